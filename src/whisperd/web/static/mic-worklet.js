// Runs on the audio thread: the microphone's samples (the context's rate, 24 kHz) as PCM16
// chunks of 100 ms, posted to the page.

const CHUNK = 2400;

class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunk = new Int16Array(CHUNK);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      for (let i = 0; i < channel.length; i += 1) {
        const sample = Math.max(-1, Math.min(1, channel[i]));
        this.chunk[this.filled] = sample < 0 ? sample * 0x8000 : sample * 0x7fff;
        this.filled += 1;
        if (this.filled === CHUNK) {
          this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
          this.chunk = new Int16Array(CHUNK);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
