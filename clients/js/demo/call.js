// The demo app: a two-party call with a data-channel chat, on the SDK's
// Client and PeerLink. Served by `switchboard serve --demo` at /demo.
import { Client, PeerLink } from './switchboard.js';

const byId = (id) => document.getElementById(id);
const ui = {
  callForm: byId('call-form'),
  room: byId('room'),
  start: byId('start'),
  hangup: byId('hangup'),
  status: byId('status'),
  local: byId('local'),
  remote: byId('remote'),
  remoteCaption: byId('remote-caption'),
  messages: byId('messages'),
  chatForm: byId('chat-form'),
  chatText: byId('chat-text'),
  send: byId('send'),
};

let client = null;
let localStream = null;
let link = null;
let channel = null;
let connection = 'Not connected';
let peer = '';

function render() {
  ui.status.textContent = peer === '' ? connection : `${connection} · ${peer}`;
}

function describe(state) {
  switch (state.status) {
    case 'connecting':
      return 'Connecting…';
    case 'connected':
      return `Connected as ${state.userId}`;
    case 'reconnecting':
      return `Connection lost (${state.code}), retrying in ${(state.delayMs / 1000).toFixed(1)} s`;
    case 'resumed':
      return `Resumed (${state.replayed} missed messages replayed)`;
    case 'disconnected':
      return `Disconnected (${state.code}${state.reason === '' ? '' : `: ${state.reason}`})`;
  }
}

function addMessage(who, text) {
  const item = document.createElement('li');
  item.textContent = `${who}: ${text}`;
  ui.messages.append(item);
  item.scrollIntoView({ block: 'nearest' });
}

function setChatEnabled(enabled) {
  ui.chatText.disabled = !enabled;
  ui.send.disabled = !enabled;
}

async function fetchToken() {
  const response = await fetch(new URL('token', import.meta.url));
  if (!response.ok) throw new Error(`GET /demo/token answered ${response.status}`);
  const { token } = await response.json();
  return token;
}

/** Calls `remoteId`: the whole WebRTC part of the app. */
function call(remoteId) {
  if (link !== null) return; // a two-party demo: the first peer only
  const pc = new RTCPeerConnection({ iceServers: [] });
  link = new PeerLink(client, pc, remoteId);
  link.on('error', (error) => {
    peer = `call error: ${error.message}`;
    render();
  });
  pc.addEventListener('track', ({ streams: [stream] }) => {
    ui.remote.srcObject = stream;
  });
  pc.addEventListener('connectionstatechange', () => {
    peer = `call ${pc.connectionState}`;
    render();
  });
  // Negotiated with a fixed id, so both sides open it without a second offer.
  channel = pc.createDataChannel('chat', { negotiated: true, id: 0 });
  channel.addEventListener('open', () => setChatEnabled(true));
  channel.addEventListener('close', () => setChatEnabled(false));
  channel.addEventListener('message', ({ data }) => addMessage('Peer', data));
  for (const track of localStream.getTracks()) pc.addTrack(track, localStream);
  ui.remoteCaption.textContent = `Peer ${remoteId}`;
}

function endCall() {
  link?.close();
  link = null;
  channel = null;
  ui.remote.srcObject = null;
  ui.remoteCaption.textContent = 'Waiting for someone to join';
  setChatEnabled(false);
  peer = '';
  render();
}

async function start(roomId) {
  ui.start.disabled = true;
  ui.room.disabled = true;
  ui.hangup.disabled = false;
  localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  ui.local.srcObject = localStream;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  client = new Client({ url: `${scheme}://${location.host}/ws`, getToken: fetchToken });
  client.on('state', (state) => {
    connection = describe(state);
    render();
  });
  client.on('error', (error) => addMessage('Error', error.message));
  client.on('room:peer-joined', ({ peer: joined }) => call(joined.clientId));
  client.on('room:peer-left', ({ clientId }) => {
    if (link?.remoteId === clientId) endCall();
  });
  // The room saw this client leave and come back as someone new: call again.
  client.on('session-lost', ({ room }) => {
    endCall();
    const first = room?.peers[0];
    if (first !== undefined) call(first.clientId);
  });
  await client.connect();
  const { peers } = await client.join(roomId);
  if (peers.length > 0) call(peers[0].clientId);
}

function hangUp() {
  endCall();
  client?.disconnect();
  client = null;
  for (const track of localStream?.getTracks() ?? []) track.stop();
  localStream = null;
  ui.local.srcObject = null;
  ui.start.disabled = false;
  ui.room.disabled = false;
  ui.hangup.disabled = true;
  ui.start.focus();
}

ui.callForm.addEventListener('submit', (event) => {
  event.preventDefault();
  start(ui.room.value.trim()).catch((error) => {
    hangUp();
    connection = `Could not start: ${error.message}`;
    render();
  });
});
ui.hangup.addEventListener('click', hangUp);
ui.chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.chatText.value.trim();
  if (text === '' || channel?.readyState !== 'open') return;
  channel.send(text);
  addMessage('You', text);
  ui.chatText.value = '';
});
