// Front end of face3d_nb.widgets.camera.FrameGrabber, part 1 of 2: the frame sources.
// An anywidget module must be one file: camera.py joins this file and grabber.js (part 2, which
// uses these classes and holds the default export) into the widget's _esm, this one first. So this
// file imports and exports nothing.

// Where camera frames come from. A source's take() returns the newest frame not taken yet, or
// null: { width, height, at (capture time, ms since the epoch), draw(context, w, h) (async, scales
// the frame onto a 2D context and releases it) }.
//
// Preferred: a MediaStreamTrackProcessor, which hands over each frame as it is captured, with no
// <video> element to decode and composite. Its pixels are read with VideoFrame.copyTo, which works
// in this process; drawing a VideoFrame onto a canvas goes through the GPU process instead, and
// without a GPU that waits behind the 3D view's rendering. Fallback: a <video> element and its
// frame callbacks.
class TrackFrames {
  constructor(track, onFrame) {
    this.latest = null;
    this.reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
    this.read(onFrame);
  }

  async read(onFrame) {
    for (;;) {
      const result = await this.reader.read().catch(() => ({ done: true }));
      if (result.done) return;
      if (this.latest) this.latest.frame.close();
      this.latest = { frame: result.value, at: performance.timeOrigin + performance.now() };
      onFrame();
    }
  }

  take() {
    if (!this.latest) return null;
    const { frame, at } = this.latest;
    this.latest = null;
    const { displayWidth: width, displayHeight: height } = frame;
    const draw = async (context, w, h) => {
      try {
        const rgba = new Uint8ClampedArray(width * height * 4);
        try {
          await frame.copyTo(rgba, { format: "RGBA" });
        } catch (error) {
          // A browser without pixel-format conversion in copyTo: draw the frame itself.
          context.drawImage(frame, 0, 0, w, h);
          return;
        }
        if (!this.full || this.full.width !== width || this.full.height !== height) {
          this.full = new OffscreenCanvas(width, height);
          this.fullContext = this.full.getContext("2d", { willReadFrequently: true });
        }
        this.fullContext.putImageData(new ImageData(rgba, width, height), 0, 0);
        context.drawImage(this.full, 0, 0, w, h);
      } finally {
        frame.close();
      }
    };
    return { width, height, at, draw };
  }

  stop() {
    this.reader.cancel().catch(() => {});
    if (this.latest) this.latest.frame.close();
    this.latest = null;
  }
}

class VideoFrames {
  constructor(stream, onFrame) {
    this.video = Object.assign(document.createElement("video"), { muted: true, playsInline: true, srcObject: stream });
    this.fresh = null;
    this.stopped = false;
    const tick = (now, metadata) => {
      this.fresh = performance.timeOrigin + ((metadata && metadata.captureTime) || performance.now());
      onFrame();
      if (!this.stopped) this.video.requestVideoFrameCallback(tick);
    };
    this.ready = this.video.play().then(() => {
      if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback(tick);
      else this.poll = setInterval(() => tick(), 33);
    });
  }

  take() {
    if (this.fresh === null || !this.video.videoWidth) return null;
    const at = this.fresh;
    this.fresh = null;
    const draw = async (context, w, h) => context.drawImage(this.video, 0, 0, w, h);
    return { width: this.video.videoWidth, height: this.video.videoHeight, at, draw };
  }

  stop() {
    this.stopped = true;
    clearInterval(this.poll);
    this.video.srcObject = null;
  }
}

