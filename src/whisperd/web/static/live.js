// Live microphone transcription over WS /v1/realtime (OpenAI's Realtime transcription
// protocol): PCM16 at 24 kHz from an AudioWorklet, server VAD for turns, each turn's text
// shown as its deltas come and replaced by its completed transcript.

const RATE = 24000;
const FINISH_WAIT_MS = 15000;
const DELTA = "conversation.item.input_audio_transcription.delta";
const COMPLETED = "conversation.item.input_audio_transcription.completed";

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/v1/realtime?intent=transcription`;
}

/** Words for a microphone that could not be opened. */
function microphoneProblem(error) {
  switch (error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "The browser did not allow the microphone. Allow it for this page (and use https or localhost).";
    case "NotFoundError":
      return "No microphone was found.";
    case "NotReadableError":
      return "The microphone is busy in another program.";
    default:
      return `The microphone could not be opened: ${error.message || error.name}.`;
  }
}

/** One live session: microphone, socket and the transcript they make. */
export class LiveSession {
  /**
   * @param {{text: HTMLElement, status: (string) => void, error: (string) => void,
   *          ended: () => void}} view
   */
  constructor(view) {
    this.view = view;
    this.items = new Map(); // item id -> {node, text, done}
    this.socket = null;
    this.context = null;
    this.stream = null;
    this.stopping = false;
    this.opened = false;
  }

  /** Open the microphone and the socket; `language` ("" to detect), `key` the API key. */
  async start({ language, key }) {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error("This browser cannot record here: the page needs https (or localhost).");
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: true },
      });
    } catch (error) {
      throw new Error(microphoneProblem(error));
    }
    this.context = new AudioContext({ sampleRate: RATE });
    await this.context.audioWorklet.addModule("/web/mic-worklet.js");
    const source = this.context.createMediaStreamSource(this.stream);
    const capture = new AudioWorkletNode(this.context, "pcm16-capture");
    source.connect(capture);
    const protocols = key ? ["realtime", `openai-insecure-api-key.${key}`] : ["realtime"];
    try {
      this.socket = new WebSocket(socketUrl(), protocols);
    } catch {
      this.release();
      throw new Error("The API key cannot be sent over a WebSocket: it holds characters a subprotocol cannot.");
    }
    this.socket.onopen = () => {
      this.opened = true;
      this.send({
        type: "session.update",
        session: {
          type: "transcription",
          audio: {
            input: {
              format: { type: "audio/pcm", rate: RATE },
              transcription: { model: "whisper-1", ...(language ? { language } : {}) },
              turn_detection: { type: "server_vad", silence_duration_ms: 500 },
            },
          },
        },
      });
      this.view.status("Listening: speak now.");
    };
    this.socket.onmessage = (message) => this.onEvent(JSON.parse(message.data));
    this.socket.onclose = (event) => this.onClose(event);
    capture.port.onmessage = (message) => {
      if (this.socket?.readyState === WebSocket.OPEN && !this.stopping) {
        this.send({ type: "input_audio_buffer.append", audio: base64(message.data) });
      }
    };
    this.view.status("Connecting…");
  }

  send(event) {
    this.socket.send(JSON.stringify(event));
  }

  item(id) {
    let item = this.items.get(id);
    if (!item) {
      const node = document.createElement("p");
      node.className = "pending";
      this.view.text.append(node);
      item = { node, text: "", done: false };
      this.items.set(id, item);
    }
    return item;
  }

  onEvent(event) {
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        this.item(event.item_id).node.textContent = "…";
        this.view.status("Hearing speech…");
        break;
      case "input_audio_buffer.speech_stopped":
        this.view.status("Transcribing what was said…");
        break;
      case DELTA: {
        const item = this.item(event.item_id);
        item.text += event.delta;
        item.node.textContent = `${item.text} …`;
        break;
      }
      case COMPLETED: {
        const item = this.item(event.item_id);
        item.done = true;
        item.text = event.transcript;
        item.node.textContent = event.transcript.trim();
        item.node.className = "final";
        if (!item.text.trim()) item.node.remove();
        if (!this.stopping) this.view.status("Listening: speak now.");
        this.maybeFinish();
        break;
      }
      case "error":
        if (this.stopping && event.error?.code === "input_audio_buffer_commit_empty") {
          this.maybeFinish();
          break;
        }
        this.view.error(event.error?.message || "The server sent an error.");
        break;
      default:
        break;
    }
    this.view.text.scrollTop = this.view.text.scrollHeight;
  }

  onClose(event) {
    this.release();
    if (!this.stopping) {
      if (!this.opened) {
        this.view.error("The server refused the live connection. If it needs an API key, enter it above.");
      } else if (event.code !== 1000) {
        this.view.error(`The live connection ended: ${event.reason || `code ${event.code}`}.`);
      }
    }
    this.view.status("Off");
    this.view.ended();
  }

  /** Stop the microphone, let the server finish the turn in progress, then close. */
  stop() {
    if (this.stopping) return;
    this.stopping = true;
    this.stream?.getTracks().forEach((track) => track.stop());
    this.context?.close().catch(() => {});
    if (this.socket?.readyState !== WebSocket.OPEN) {
      this.socket?.close();
      return;
    }
    this.view.status("Finishing the last words…");
    this.send({ type: "input_audio_buffer.commit" });
    this.finishTimer = setTimeout(() => this.socket?.close(1000), FINISH_WAIT_MS);
  }

  maybeFinish() {
    if (!this.stopping) return;
    const pending = [...this.items.values()].some((item) => !item.done);
    if (!pending) {
      clearTimeout(this.finishTimer);
      this.socket?.close(1000);
    }
  }

  release() {
    this.stream?.getTracks().forEach((track) => track.stop());
    if (this.context && this.context.state !== "closed") this.context.close().catch(() => {});
  }

  /** The transcript so far, one line per turn. */
  text() {
    return [...this.items.values()].map((item) => item.text.trim()).filter(Boolean).join("\n");
  }
}
