// Loaded into each test page: one SDK client and at most one call, driven
// by the browser tests through `window.harness`.
import { Client, PeerLink } from '/switchboard.js';

const log = [];
const received = [];
const remoteTracks = [];
let client = null;
let pc = null;
let channel = null;
let stream = null;

function record(entry) {
  log.push({ at: performance.now(), ...entry });
}

async function camera() {
  stream ??= await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
  return stream;
}

window.harness = {
  async join({ url, token, roomId }) {
    client = new Client({ url, token, backoff: { initialMs: 100, maxMs: 400 } });
    client.on('state', (state) => record({ kind: 'state', ...state }));
    client.on('error', (error) => record({ kind: 'error', message: error.message }));
    client.on('sdp:offer', () => record({ kind: 'got-offer' }));
    await client.connect();
    const { peers } = await client.join(roomId);
    return { clientId: client.clientId, peers: peers.map((p) => p.clientId) };
  },

  /**
   * Starts the call to `remoteId`, with the camera's track if `video`. The
   * data channel is `negotiated` (both sides open it, id 0), or made by this
   * side (`create`) or by the other (`accept`): a side that only accepts
   * has nothing to offer, so the other side's offer is the only one.
   * With `at`, the call starts at that `Date.now()` time, once the camera
   * is open.
   */
  async call(remoteId, { video, channel: how, at }) {
    const media = video ? await camera() : null;
    // Pages given the same `at` (a Date.now() time) start together, to make glare.
    if (at !== undefined) await new Promise((done) => setTimeout(done, at - Date.now()));
    pc = new RTCPeerConnection({ iceServers: [] });
    const link = new PeerLink(client, pc, remoteId);
    link.on('error', (error) => record({ kind: 'link-error', message: error.message }));
    pc.addEventListener('track', ({ track }) => remoteTracks.push(track.id));
    pc.addEventListener('negotiationneeded', () => record({ kind: 'negotiation-needed' }));
    const listen = (opened) => {
      channel = opened;
      channel.addEventListener('message', ({ data }) => received.push(data));
    };
    if (how === 'accept') pc.addEventListener('datachannel', ({ channel: opened }) => listen(opened));
    else listen(pc.createDataChannel('chat', how === 'negotiated' ? { negotiated: true, id: 0 } : {}));
    if (media !== null) for (const track of media.getTracks()) pc.addTrack(track, media);
  },

  /** Adds another (cloned) camera track: a renegotiation. */
  async addVideo() {
    const track = (await camera()).getVideoTracks()[0].clone();
    pc.addTrack(track, new MediaStream([track]));
  },

  send(text) {
    channel.send(text);
  },

  async snapshot() {
    let inboundVideoBytes = 0;
    if (pc !== null) {
      for (const report of (await pc.getStats()).values()) {
        if (report.type === 'inbound-rtp' && report.kind === 'video') inboundVideoBytes += report.bytesReceived;
      }
    }
    return {
      clientId: client?.clientId ?? null,
      state: client?.state ?? null,
      connectionState: pc?.connectionState ?? 'none',
      channelState: channel?.readyState ?? 'none',
      inboundVideoBytes,
      received: [...received],
      remoteTracks: [...remoteTracks],
      log: [...log],
    };
  },
};
