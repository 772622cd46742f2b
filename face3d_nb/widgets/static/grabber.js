// Front end of face3d_nb.widgets.camera.FrameGrabber: camera frames -> JPEG -> kernel, acknowledgement paced.
// The protocol is described in face3d_nb/widgets/camera.py's module docstring.
//
// One Grabber per model, made in initialize, owns the camera and the capture loop; a view (render)
// only shows the preview and the status. anywidget gives initialize and each render a model proxy
// of their own, so a map keyed by the model would not find the Grabber from render: the default
// export is a factory, called once per model, whose closure holds that model's Grabber.

const ACK_TIMEOUT_MS = 5000; // an unacknowledged frame counts as lost after this long (kernel restarted)

const DENIED = "Camera access was denied. Allow the camera for this page (in the address bar) and reload the page.";
const MESSAGES = {
  NotAllowedError: DENIED,
  SecurityError: DENIED,
  NotFoundError: "No camera was found. Connect a camera and reload the page.",
  OverconstrainedError: "No camera supports the requested resolution.",
  NotReadableError: "The camera could not be started: another application may be using it.",
  AbortError: "The camera could not be started.",
};

const INSECURE =
  "This page cannot use a camera: browsers only allow cameras on https:// and http://localhost pages.";
const ENDED = "The camera stream ended (camera unplugged or stopped). Reload the page to start it again.";

function explain(error) {
  return MESSAGES[error && error.name] || `The camera could not be started (${(error && error.message) || error}).`;
}

function statusFor(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "no-camera";
  return "error";
}

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

// The stream, the frame source and the grab loop; it runs while a view is attached and the page is visible.
class Grabber {
  constructor(model) {
    this.model = model;
    this.views = new Set();
    this.inFlight = new Map(); // seq -> time sent (ms)
    this.seq = 0;
    this.lastSent = 0;
    this.lastPreview = -Infinity;
    this.busy = false;
    this.source = null;
    this.starting = null;
    this.timer = null;
    this.canvas = null;
    this.disposed = false;
    this.onVisibility = () => this.update();
    document.addEventListener("visibilitychange", this.onVisibility);
    model.on("msg:custom", (msg) => this.onMessage(msg));
    model.on("change:enabled", () => this.update());
    model.on("change:max_fps", () => this.pump());
  }

  // The model is gone: stop reading the camera (anywidget drops the listeners on initialize's model).
  dispose() {
    this.disposed = true;
    document.removeEventListener("visibilitychange", this.onVisibility);
    clearTimeout(this.timer);
    if (this.source) this.source.stop();
    this.source = null;
  }

  setStatus(status, message = "") {
    if (this.model.get("status") === status && this.model.get("message") === message) return;
    this.model.set({ status, message });
    this.model.save_changes();
  }

  async cameraStream() {
    const ref = this.model.get("camera");
    if (typeof ref === "string" && ref.startsWith("IPY_MODEL_")) {
      let camera = null;
      try {
        camera = await this.model.widget_manager.get_model(ref.slice("IPY_MODEL_".length));
      } catch (error) {
        console.warn("face3d: ipywebrtc front end unavailable, opening the camera directly", error);
      }
      if (camera && typeof camera.captureStream === "function") return camera.captureStream();
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error(INSECURE), { name: "InsecureContext" });
    }
    return navigator.mediaDevices.getUserMedia(this.model.get("constraints"));
  }

  async start() {
    this.setStatus("starting");
    let stream;
    try {
      stream = await this.cameraStream();
    } catch (error) {
      this.setStatus(statusFor(error), error.name === "InsecureContext" ? INSECURE : explain(error));
      return;
    }
    if (this.disposed) return;
    const track = stream.getVideoTracks()[0];
    if (!track || track.readyState === "ended") {
      this.setStatus("ended", ENDED);
      return;
    }
    track.addEventListener("ended", () => {
      if (this.source) this.source.stop();
      this.source = null;
      this.setStatus("ended", ENDED);
    });
    try {
      if (typeof MediaStreamTrackProcessor === "function") {
        this.source = new TrackFrames(track, () => this.pump());
      } else {
        this.source = new VideoFrames(stream, () => this.pump());
        await this.source.ready;
      }
    } catch (error) {
      this.setStatus("error", explain(error));
      return;
    }
    if (this.disposed) this.dispose();
    else this.update();
  }

  get running() {
    return this.views.size > 0 && document.visibilityState !== "hidden" && this.model.get("enabled");
  }

  update() {
    if (!this.source) {
      if (this.views.size > 0 && !this.starting) this.starting = this.start();
      return;
    }
    if (this.views.size === 0) return;
    if (document.visibilityState === "hidden") this.setStatus("hidden");
    else if (!this.model.get("enabled")) this.setStatus("paused");
    else this.setStatus("streaming");
    this.pump();
  }

  onMessage(msg) {
    if (msg && msg.type === "ack") {
      this.inFlight.delete(msg.seq);
      this.pump();
    }
  }

  pump() {
    if (!this.source || !this.running || this.busy) return;
    const now = performance.now();
    for (const [seq, sent] of this.inFlight) if (now - sent > ACK_TIMEOUT_MS) this.inFlight.delete(seq);
    if (this.inFlight.size >= Math.max(1, this.model.get("max_in_flight"))) return;
    const maxFps = this.model.get("max_fps");
    const wait = maxFps > 0 ? this.lastSent + 1000 / maxFps - now : 0;
    if (wait > 0) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.pump(), wait);
      return;
    }
    const frame = this.source.take();
    if (!frame) return;
    this.busy = true;
    this.grab(frame)
      .catch((error) => console.error("face3d: frame grab failed", error))
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  async grab(frame) {
    const longSide = Math.max(32, this.model.get("width"));
    const scale = Math.min(1, longSide / Math.max(frame.width, frame.height));
    const width = Math.max(1, Math.round(frame.width * scale));
    const height = Math.max(1, Math.round(frame.height * scale));
    if (!this.canvas || this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas = new OffscreenCanvas(width, height);
      this.context = this.canvas.getContext("2d", { willReadFrequently: true });
    }
    await frame.draw(this.context, width, height);
    const blob = await this.canvas.convertToBlob({ type: "image/jpeg", quality: this.model.get("quality") });
    // Every page redraw costs a full composite without a GPU: the preview need not follow every frame.
    const previewFps = this.model.get("preview_fps");
    const now = performance.now();
    if (previewFps > 0 && now - this.lastPreview >= 1000 / previewFps) {
      this.lastPreview = now;
      for (const view of this.views) view.preview(blob);
    }
    const buffer = await blob.arrayBuffer();
    const seq = ++this.seq;
    this.inFlight.set(seq, performance.now());
    this.lastSent = performance.now();
    this.model.send({ type: "frame", seq, captured_at: frame.at, width, height }, undefined, [buffer]);
  }

  attach(view) {
    this.views.add(view);
    this.update();
  }

  detach(view) {
    this.views.delete(view);
  }
}

function renderView(grabber, { model, el }) {
  el.classList.add("face3d-camera");
  const preview = document.createElement("img");
  preview.className = "face3d-camera-preview";
  preview.alt = "camera";
  preview.hidden = true;
  const message = document.createElement("div");
  message.className = "face3d-camera-message";
  message.setAttribute("role", "alert");
  el.append(preview, message);
  const show = () => {
    el.dataset.status = model.get("status");
    message.textContent = model.get("message");
    message.hidden = !model.get("message");
  };
  // The preview shows exactly the frames sent, as they are sent: the page redraws once per frame
  // processed rather than at the camera's full rate. An <img> decodes off the main thread and never
  // waits for the GPU, unlike a canvas.
  let shown = null;
  const view = {
    preview(jpeg) {
      const url = URL.createObjectURL(jpeg);
      preview.onload = () => {
        if (shown) URL.revokeObjectURL(shown);
        shown = url;
      };
      preview.src = url;
      preview.hidden = false;
    },
  };
  model.on("change:status", show);
  model.on("change:message", show);
  show();
  grabber.attach(view);
  return () => {
    model.off("change:status", show);
    model.off("change:message", show);
    grabber.detach(view);
    if (shown) URL.revokeObjectURL(shown);
  };
}

export default () => {
  let grabber = null;
  return {
    initialize({ model }) {
      grabber = new Grabber(model);
      return () => grabber.dispose();
    },
    render: (view) => renderView(grabber, view),
  };
};
