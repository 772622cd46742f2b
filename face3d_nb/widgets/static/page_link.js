// Front end of face3d_nb.widgets.page_link.PageLink, part 2 of 2 (frame_store.js, part 1, holds the
// frames; this file the default export). The kernel<->page protocol (messages, windows, the
// timeout) is the table in face3d_nb/widgets/page_link.py's module docstring.
// Sections: the GPU probe (what the page can decode), pings, frames, update watching (material
// acknowledgements, the frame each update names), the status view. Per-model state lives in
// initialize()'s closure; the status view needs none of it.

// -- The GPU probe ---------------------------------------------------------------------------------

const HALF = { 0.25: 0x3400, 0.5: 0x3800, 0.75: 0x3a00, 1: 0x3c00 };

const PROBE_VERTEX = `
attribute vec2 corner;
uniform highp sampler2D probe;
varying vec4 fetched;
void main() {
  fetched = texture2D(probe, vec2(0.5));
  gl_PointSize = 1.0;
  gl_Position = vec4(corner, 0.0, 1.0);
}`;

const PROBE_FRAGMENT = `
precision mediump float;
varying vec4 fetched;
void main() { gl_FragColor = fetched; }`;

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
  return shader;
}

// The WebGL renderer's name (a CPU rasteriser such as SwiftShader when there is no usable GPU).
function rendererName(gl) {
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  return String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) || "");
}

// The renderer's name, and whether the decode shaders can run: "ok" or why not. They need vertex
// texture fetch of half floats (checked by drawing one point whose colour the vertex shader
// fetched from a half-float texture, and reading it back) and flat normals (screen-space
// derivatives).
function inspectGpu() {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const gl2 = canvas.getContext("webgl2");
  const gl = gl2 || canvas.getContext("webgl");
  if (!gl) return { renderer: "", support: "no WebGL in this browser" };
  try {
    return { renderer: rendererName(gl), support: decodeSupport(gl, gl2) };
  } finally {
    const lose = gl.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
  }
}

function decodeSupport(gl, gl2) {
  if (gl.getParameter(gl.MAX_VERTEX_TEXTURE_IMAGE_UNITS) < 1) return "no vertex texture fetch";
  let halfType = gl2 ? gl2.HALF_FLOAT : null;
  if (!gl2) {
    const half = gl.getExtension("OES_texture_half_float");
    if (!half) return "no half-float textures";
    if (!gl.getExtension("OES_standard_derivatives")) return "no screen-space derivatives";
    halfType = half.HALF_FLOAT_OES;
  }
  try {
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, PROBE_VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, PROBE_FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) return "shader link failed";
    gl.useProgram(program);
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.NEAREST);
    const texel = new Uint16Array([HALF[0.25], HALF[0.5], HALF[0.75], HALF[1]]);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl2 ? gl2.RGBA16F : gl.RGBA, 1, 1, 0, gl.RGBA, halfType, texel);
    const buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([0, 0]), gl.STATIC_DRAW);
    const corner = gl.getAttribLocation(program, "corner");
    gl.enableVertexAttribArray(corner);
    gl.vertexAttribPointer(corner, 2, gl.FLOAT, false, 0, 0);
    gl.viewport(0, 0, 1, 1);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.drawArrays(gl.POINTS, 0, 1);
    const pixel = new Uint8Array(4);
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel);
    const expected = [64, 128, 191, 255];
    if (pixel.some((v, i) => Math.abs(v - expected[i]) > 2)) return "half-float vertex texture fetch gave wrong values";
    return "ok";
  } catch (error) {
    return `GPU decode check failed (${error.message || error})`;
  }
}

// -- Pings -----------------------------------------------------------------------------------------

// Answer each timing ping at once: the kernel measures the round trip.
function answerPings(model) {
  const onMessage = (msg) => {
    if (msg && msg.type === "ping") model.send({ type: "pong", id: msg.id });
  };
  model.on("msg:custom", onMessage);
  return () => model.off("msg:custom", onMessage);
}

// -- Frames ----------------------------------------------------------------------------------------

function kernelFrames(model, frames) {
  const onMessage = (msg, buffers) => {
    if (!msg || msg.type !== "frame" || typeof msg.name !== "string" || !buffers || buffers.length !== 1) return;
    frames.add(msg.name, new Blob([buffers[0]], { type: "image/jpeg" }));
  };
  model.on("msg:custom", onMessage);
  const registry = (globalThis.face3dFrames ??= new Set());
  registry.add(frames);
  const updateQuad = async () => {
    const ref = model.get("frame_texture");
    frames.quad = ref ? await modelOf(model, ref) : null;
  };
  model.on("change:frame_texture", updateQuad);
  updateQuad().catch((e) => console.error("face3d: frame texture", e));
  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:frame_texture", updateQuad);
    registry.delete(frames);
    frames.close();
  };
}

// -- Update watching -------------------------------------------------------------------------------

// Once three.js has a coefficient update (as pythreejs acknowledges a position array: applied, to be
// drawn at the next animation frame): acknowledge it and show its frame. Also for a material's
// current update when watching starts (it may have arrived before the watch).
function coefficientUpdate(model, frames, material) {
  const uniforms = material.get("uniforms") || {};
  if (material.obj) frames.show(material.obj, frameName(uniforms.frameName && uniforms.frameName.value));
  const seq = uniforms.seq?.value;
  if (typeof seq === "number") model.send({ type: "applied", seq });
}

// A position update with a header (face3d_nb/view/view_modes.py FaceFrame.header): rows of
// (a, b, far z) after the vertices, copied into the material's uniforms.
const HEADER_ROWS = 5;

function positionUpdate(frames, attribute, material) {
  const array = attribute.obj && attribute.obj.array;
  const uniforms = material.obj && material.obj.uniforms;
  if (!array || !uniforms || array.length < 3 * HEADER_ROWS) return;
  const h = array.subarray(array.length - 3 * HEADER_ROWS);
  uniforms.frameSize.value.set(h[3], h[4]);
  uniforms.imageCenter.value.set(h[6], h[7], h[9]);
  uniforms.imageScale.value = h[10];
  uniforms.depthRange.value.set(h[12], h[13]);
  frames.show(material.obj, frameName({ x: h[0], y: h[1] }));
}

// The name of the frame an update names by (tag, seq); "" for none (tag -1).
function frameName(pair) {
  return pair && pair.x >= 0 ? `${pair.x}:${pair.y}` : "";
}

function unwatch(state) {
  for (const [target, event, listener] of state.watched) target.off(event, listener);
  state.watched = [];
}

// A pythreejs model, once its three.js object exists.
async function modelOf(model, ref) {
  const found = await model.widget_manager.get_model(String(ref).slice("IPY_MODEL_".length));
  await found.initPromise;
  return found;
}

// Listen to every watched update; a microtask runs once the change has been dispatched, pythreejs's
// own handler (which applies it to the three.js object) included, and before it is drawn.
async function watchUpdates(model, frames, state) {
  const mine = ++state.generation;
  unwatch(state);
  const materials = await Promise.all((model.get("materials") || []).map((ref) => modelOf(model, ref)));
  const headers = await Promise.all((model.get("headers") || []).map((pair) => Promise.all(pair.map((ref) => modelOf(model, ref)))));
  if (mine !== state.generation) return; // a newer list arrived meanwhile
  const watch = (target, event, update) => {
    const listener = () => queueMicrotask(update);
    target.on(event, listener);
    state.watched.push([target, event, listener]);
    update();
  };
  frames.keep([...materials, ...headers.map((pair) => pair[1])].map((m) => m.obj));
  for (const material of materials) watch(material, "change:uniforms", () => coefficientUpdate(model, frames, material));
  for (const [attribute, material] of headers) {
    watch(attribute, "change:array", () => positionUpdate(frames, attribute, material));
    watch(material, "change:uniforms", () => positionUpdate(frames, attribute, material));
  }
}

function watchAll(model, frames, state) {
  const update = () => watchUpdates(model, frames, state).catch((e) => console.error("face3d: watching updates", e));
  model.on("change:materials change:headers", update);
  update();
  return () => {
    model.off("change:materials change:headers", update);
    state.generation += 1;
    unwatch(state);
  };
}

// -- The widget ------------------------------------------------------------------------------------

function initialize({ model }) {
  const state = { watched: [], generation: 0 };
  const frames = new FrameStore(model);
  const stops = [answerPings(model), kernelFrames(model, frames), watchAll(model, frames, state)];
  const { renderer, support } = inspectGpu();
  model.send({ type: "hello", renderer });
  model.set("gpu_decode", support);
  model.save_changes();
  return () => {
    stops.forEach((stop) => stop());
  };
}

// -- The status view -------------------------------------------------------------------------------

// Two lines, each hidden while empty: the app's note (why it starts with its settings) and the
// viewer's transport message.
function render({ model, el }) {
  const offs = [["note", "face3d-link"], ["message", "face3d-transport-message"]].map(([name, className]) => {
    const line = document.createElement("div");
    line.classList.add(className, "face3d-notice");
    el.appendChild(line);
    const show = () => {
      line.textContent = model.get(name);
      line.hidden = !model.get(name);
    };
    model.on(`change:${name}`, show);
    show();
    return () => model.off(`change:${name}`, show);
  });
  return () => offs.forEach((off) => off());
}

export default { initialize, render };
