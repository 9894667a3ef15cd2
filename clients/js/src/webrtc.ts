import type { SessionLost } from './client.js';
import { Emitter } from './events.js';
import type { CandidateRelay, IceCandidate, SdpRelay } from './protocol.js';

/** What a `PeerLink` needs of a `Client`. */
export interface Signaling {
  readonly clientId: string | undefined;
  sendOffer(to: string, sdp: string): void;
  sendAnswer(to: string, sdp: string): void;
  sendCandidate(to: string, candidate: IceCandidate): void;
  on(event: 'sdp:offer' | 'sdp:answer', listener: (message: SdpRelay) => void): () => void;
  on(event: 'ice:candidate', listener: (message: CandidateRelay) => void): () => void;
  on(event: 'session-lost', listener: (lost: SessionLost) => void): () => void;
}

export interface PeerLinkOptions {
  /**
   * The polite side gives way when both offer at once. By default the side
   * with the greater client id is polite (ids compare as strings in their
   * numeric order, so both sides agree).
   */
  polite?: boolean;
}

export interface PeerLinkEvents {
  /** A negotiation step failed; the connection may not recover without `restartIce()`. */
  error: Error;
}

/**
 * How long a polite side that must give way waits for its own first offer
 * to gather a candidate. Chromium, rolled back before that, about one time
 * in eight answers with no candidates at all and never connects.
 */
const GATHER_BEFORE_ROLLBACK_MS = 1000;

/**
 * Wires one `RTCPeerConnection` to one remote client through Switchboard
 * relays with the perfect negotiation pattern: either side may add tracks
 * or channels at any time, and offers that cross are settled without the
 * app's help. After a session that could not be resumed it restarts ICE.
 */
export class PeerLink extends Emitter<PeerLinkEvents> {
  private makingOffer = false;
  private ignoreOffer = false;
  /** Signaling is applied one message at a time, in arrival order. */
  private inbox: Promise<void> = Promise.resolve();
  /** Settles when the offer being made has gathered its first candidate. */
  private ownOfferGathered: Promise<void> | undefined;
  private gatheredOne: (() => void) | undefined;
  private readonly detach: (() => void)[];

  constructor(
    private readonly signaling: Signaling,
    readonly pc: RTCPeerConnection,
    readonly remoteId: string,
    private readonly options: PeerLinkOptions = {},
  ) {
    super();
    pc.addEventListener('negotiationneeded', this.negotiate);
    pc.addEventListener('icecandidate', this.localCandidate);
    this.detach = [
      () => { pc.removeEventListener('negotiationneeded', this.negotiate); },
      () => { pc.removeEventListener('icecandidate', this.localCandidate); },
      signaling.on('sdp:offer', (m) => { this.fromRemote(m.from, () => this.description({ type: 'offer', sdp: m.sdp })); }),
      signaling.on('sdp:answer', (m) => { this.fromRemote(m.from, () => this.description({ type: 'answer', sdp: m.sdp })); }),
      signaling.on('ice:candidate', (m) => { this.fromRemote(m.from, () => this.remoteCandidate(m.candidate)); }),
      // Signaling in flight was lost with the session, and the path may have
      // changed while the client was away.
      signaling.on('session-lost', () => { pc.restartIce(); }),
    ];
  }

  get polite(): boolean {
    return this.options.polite ?? (this.signaling.clientId ?? '') > this.remoteId;
  }

  /** Stops listening and closes the peer connection. */
  close(): void {
    for (const off of this.detach) off();
    this.pc.close();
  }

  private readonly negotiate = (): void => {
    void this.makeOffer();
  };

  private async makeOffer(): Promise<void> {
    if (this.pc.iceGatheringState === 'new') {
      this.ownOfferGathered = new Promise((resolve) => {
        this.gatheredOne = resolve;
      });
    }
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.sendLocalDescription();
    } catch (error) {
      this.fail(error);
    } finally {
      this.makingOffer = false;
    }
  }

  private readonly localCandidate = (event: RTCPeerConnectionIceEvent): void => {
    this.gatheredOne?.();
    this.gatheredOne = undefined;
    // null marks the end of gathering; the remote side needs no word of it.
    if (event.candidate === null) return;
    try {
      this.signaling.sendCandidate(this.remoteId, event.candidate.toJSON() as IceCandidate);
    } catch (error) {
      this.fail(error); // e.g. the client was disconnected: report it here, not as an uncaught error
    }
  };

  private fromRemote(from: string, handle: () => Promise<void>): void {
    if (from !== this.remoteId) return;
    this.inbox = this.inbox.then(handle).catch((error: unknown) => { this.fail(error); });
  }

  private async description(description: RTCSessionDescriptionInit): Promise<void> {
    // The W3C example's "remote answer pending" guard is not needed: with
    // one message applied at a time no offer is looked at mid-answer.
    const collision = description.type === 'offer' && (this.makingOffer || this.pc.signalingState !== 'stable');
    this.ignoreOffer = collision && !this.polite;
    if (this.ignoreOffer) return;
    if (collision && this.ownOfferGathered !== undefined) {
      await Promise.race([this.ownOfferGathered, delay(GATHER_BEFORE_ROLLBACK_MS)]);
    }
    await this.pc.setRemoteDescription(description);
    if (description.type === 'offer') {
      await this.pc.setLocalDescription();
      this.sendLocalDescription();
    }
  }

  private async remoteCandidate(candidate: IceCandidate): Promise<void> {
    // Read when this candidate's turn comes, not after it fails: by then an
    // answer behind the ignored offer may have cleared the flag.
    const ignoring = this.ignoreOffer;
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      if (!ignoring) throw error;
    }
  }

  private sendLocalDescription(): void {
    const local = this.pc.localDescription;
    if (local === null) throw new Error('setLocalDescription() left no local description');
    if (local.type === 'offer') this.signaling.sendOffer(this.remoteId, local.sdp);
    else if (local.type === 'answer') this.signaling.sendAnswer(this.remoteId, local.sdp);
    else throw new Error(`unexpected local description of type ${local.type}`);
  }

  private fail(error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error));
    if (this.listenerCount('error') === 0) console.error(`switchboard PeerLink to ${this.remoteId}:`, failure);
    this.emit('error', failure);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
