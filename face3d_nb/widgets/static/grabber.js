// Front end of face3d_nb.widgets.camera.FrameGrabber, part 2 of 2: camera frames -> JPEG -> kernel,
// acknowledgement paced. The protocol is described in face3d_nb/widgets/camera.py's module docstring.
// camera.py joins frame_sources.js (part 1: TrackFrames, VideoFrames) and this file into one module.
//
// One Grabber per model, made in initialize, owns the camera and the capture loop; a view (render) only shows
// the preview, the status, where frames come from and the camera picker. anywidget gives initialize and each
// render a model proxy of their own, so a map keyed by the model would not find the Grabber from render: the
// default export is a factory, called once per model, whose closure holds that model's Grabber.

const ACK_TIMEOUT_MS = 5000; // an unacknowledged frame counts as lost after this long (kernel restarted)
const HANDOVER_MS = 1000; // camera.py's _HANDOVER_S

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

// Which path delivers frames: ipywebrtc's CameraStream, or the page's own getUserMedia.
const VIA_IPYWEBRTC = "Camera: via ipywebrtc";
const NO_IPYWEBRTC = "ipywebrtc's front end is not available here";

function explain(error) {
  return MESSAGES[error && error.name] || `The camera could not be started (${(error && error.message) || error}).`;
}

function statusFor(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "no-camera";
  return "error";
}

// The stream, the frame source and the grab loop; it runs while a view is attached and the page is visible.
class Grabber {
  constructor(model) {
    this.model = model;
    this.views = new Set();
    this.inFlight = new Map(); // seq -> time sent (ms)
    this.seq = 0;
    // Every page showing this widget (JupyterLab tabs) gets every ack: each keeps only its own.
    this.page = String(1 + Math.floor(Math.random() * 0xfffffe)); // 1..2^24-1: it names frames, "tag:seq"
    this.lastSent = 0;
    this.idleUntil = 0;
    this.lastPreview = -Infinity;
    this.busy = false;
    this.frames = null; // the frame source, a TrackFrames or VideoFrames (the trait "source" says where from)
    this.stream = null; // the stream the page opened itself (direct), stopped when replaced
    this.starting = null;
    this.generation = 0; // bumped when the camera is reopened: a start still under way is stale
    this.note = "";
    this.cameras = []; // video inputs [{ id, label }], known once the camera is allowed
    this.current = "";
    this.timer = null;
    this.canvas = null;
    this.disposed = false;
    this.onVisibility = () => this.update();
    document.addEventListener("visibilitychange", this.onVisibility);
    this.onDevices = () => this.listCameras();
    if (navigator.mediaDevices) navigator.mediaDevices.addEventListener("devicechange", this.onDevices);
    model.on("msg:custom", (msg) => this.onMessage(msg));
    model.on("change:enabled", () => this.update());
    model.on("change:max_fps", () => this.pump());
    model.on("change:device_id", () => this.reopen());
  }

  // The model is gone: stop reading the camera (anywidget drops the listeners on initialize's model).
  dispose() {
    this.disposed = true;
    document.removeEventListener("visibilitychange", this.onVisibility);
    if (navigator.mediaDevices) navigator.mediaDevices.removeEventListener("devicechange", this.onDevices);
    clearTimeout(this.timer);
    this.close();
  }

  // Stop reading frames; a stream the page opened itself is stopped too (a CameraStream's belongs to it).
  close() {
    if (this.frames) this.frames.stop();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.frames = null;
    this.stream = null;
  }

  // Another camera was chosen (device_id): read from it instead.
  reopen() {
    this.generation += 1;
    this.close();
    this.starting = null;
    this.update();
  }

  refreshViews() {
    for (const view of this.views) view.refresh();
  }

  setStatus(status, message = "") {
    if (this.model.get("status") === status && this.model.get("message") === message) return;
    this.model.set({ status, message });
    this.model.save_changes();
  }

  // { stream, source, note }: ipywebrtc's CameraStream when there is one and its front end is loaded
  // and no other camera was chosen (it opens its stream once, with its own constraints), else the
  // page opens the camera itself.
  async openStream() {
    const ref = this.model.get("camera");
    const deviceId = this.model.get("device_id");
    let why = deviceId ? "the camera chosen here" : "";
    if (!deviceId && typeof ref === "string" && ref.startsWith("IPY_MODEL_")) {
      let camera = null;
      try {
        camera = await this.model.widget_manager.get_model(ref.slice("IPY_MODEL_".length));
      } catch (error) {
        console.warn("face3d: ipywebrtc front end unavailable, opening the camera directly", error);
      }
      if (camera && typeof camera.captureStream === "function") {
        return { stream: await camera.captureStream(), source: "camera_stream", note: VIA_IPYWEBRTC };
      }
      why = NO_IPYWEBRTC;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error(INSECURE), { name: "InsecureContext" });
    }
    const constraints = structuredClone(this.model.get("constraints"));
    if (deviceId) constraints.video = { ...(constraints.video || {}), deviceId: { exact: deviceId } };
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    return { stream, source: "direct", note: why ? `Camera: opened directly (${why})` : "Camera: opened directly" };
  }

  async start() {
    const generation = this.generation;
    this.setStatus("starting");
    let opened;
    try {
      opened = await this.openStream();
    } catch (error) {
      if (generation === this.generation) {
        this.setStatus(statusFor(error), error.name === "InsecureContext" ? INSECURE : explain(error));
      }
      return;
    }
    const { stream, source, note } = opened;
    if (this.disposed || generation !== this.generation) {
      if (source === "direct") for (const t of stream.getTracks()) t.stop();
      return;
    }
    if (source === "direct") this.stream = stream;
    this.note = note;
    this.model.set("source", source);
    this.model.save_changes();
    const track = stream.getVideoTracks()[0];
    if (!track || track.readyState === "ended") {
      this.setStatus("ended", ENDED);
      return;
    }
    track.addEventListener("ended", () => {
      if (generation !== this.generation) return;
      this.close();
      this.setStatus("ended", ENDED);
    });
    this.current = (track.getSettings && track.getSettings().deviceId) || "";
    this.listCameras();
    try {
      if (typeof MediaStreamTrackProcessor === "function") {
        this.frames = new TrackFrames(track, () => this.pump());
      } else {
        this.frames = new VideoFrames(stream, () => this.pump());
        await this.frames.ready;
      }
    } catch (error) {
      this.setStatus("error", explain(error));
      return;
    }
    if (this.disposed) this.dispose();
    else this.update();
  }

  // Camera labels are only given once a camera is allowed: listed after it is open, and on changes.
  async listCameras() {
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    const inputs = devices.filter((d) => d.kind === "videoinput" && d.deviceId);
    this.cameras = inputs.map((d, i) => ({ id: d.deviceId, label: d.label || `Camera ${i + 1}` }));
    this.model.set("cameras", this.cameras);
    this.model.save_changes();
    this.refreshViews();
  }

  get running() {
    return this.views.size > 0 && document.visibilityState !== "hidden" && this.model.get("enabled");
  }

  update() {
    if (!this.frames) {
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
    if (msg && msg.type === "ack" && msg.page === this.page) {
      this.inFlight.delete(msg.seq);
      // Another page is streaming to this kernel: try again later, not at the camera's rate.
      if (msg.accepted === false) this.idleUntil = performance.now() + HANDOVER_MS;
      this.pump();
    }
  }

  pump() {
    if (!this.frames || !this.running || this.busy) return;
    const now = performance.now();
    for (const [seq, sent] of this.inFlight) if (now - sent > ACK_TIMEOUT_MS) this.inFlight.delete(seq);
    if (this.inFlight.size >= Math.max(1, this.model.get("max_in_flight"))) return;
    const maxFps = this.model.get("max_fps");
    const wait = Math.max(maxFps > 0 ? this.lastSent + 1000 / maxFps - now : 0, this.idleUntil - now);
    if (wait > 0) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.pump(), wait);
      return;
    }
    const frame = this.frames.take();
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
    for (const frames of globalThis.face3dFrames || []) frames.offer(`${this.page}:${seq}`, blob); // for the 3D view
    this.lastSent = performance.now();
    this.inFlight.set(seq, this.lastSent);
    this.model.send({ type: "frame", page: this.page, seq, captured_at: frame.at, width, height }, undefined, [buffer]);
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
  const source = document.createElement("div");
  source.className = "face3d-camera-source";
  // Only when there is a choice: the browser offers more than one camera.
  const picker = document.createElement("select");
  picker.className = "face3d-camera-picker";
  picker.title = "Camera";
  picker.hidden = true;
  picker.addEventListener("change", () => {
    model.set("device_id", picker.value);
    model.save_changes();
  });
  el.append(preview, source, picker, message);
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
    refresh() {
      source.textContent = grabber.note;
      picker.replaceChildren(...grabber.cameras.map(({ id, label }) => new Option(label, id)));
      picker.value = grabber.current;
      picker.hidden = grabber.cameras.length < 2;
      el.dataset.device = grabber.current;
    },
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
  view.refresh();
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
