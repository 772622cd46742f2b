// Front end of face3d_nb.widgets.page_link.PageLink. The kernel<->page protocol (messages, windows,
// the timeout) is the table in face3d_nb/widgets/page_link.py's module docstring.
// Sections: the GPU probe (what the page can decode), pings, material acknowledgements, the status
// view. Per-model state lives in initialize()'s closure; the status view needs none of it.

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

// -- Material acknowledgements ---------------------------------------------------------------------

// Acknowledge each uniforms update of the watched materials once three.js has it (as pythreejs
// acknowledges a position array: applied, to be drawn at the next animation frame), and a
// material's current update when watching starts (it may have arrived before the watch).
function acknowledge(model, material) {
  const seq = material.get("uniforms")?.seq?.value;
  if (typeof seq === "number") model.send({ type: "applied", seq });
}

function unwatch(state) {
  for (const [material, listener] of state.watched) material.off("change:uniforms", listener);
  state.watched = [];
}

async function watchMaterials(model, state) {
  const mine = ++state.generation;
  unwatch(state);
  const refs = model.get("materials") || [];
  const materials = await Promise.all(
    refs.map((ref) => model.widget_manager.get_model(String(ref).slice("IPY_MODEL_".length))),
  );
  if (mine !== state.generation) return; // a newer list arrived meanwhile
  state.watched = materials.map((material) => {
    // A microtask runs once this change has been dispatched, pythreejs's own handler included.
    const listener = () => queueMicrotask(() => acknowledge(model, material));
    material.on("change:uniforms", listener);
    acknowledge(model, material);
    return [material, listener];
  });
}

function acknowledgeMaterials(model, state) {
  const update = () => watchMaterials(model, state).catch((e) => console.error("face3d: watching materials", e));
  model.on("change:materials", update);
  update();
  return () => {
    model.off("change:materials", update);
    state.generation += 1;
    unwatch(state);
  };
}

// -- The widget ------------------------------------------------------------------------------------

function initialize({ model }) {
  const state = { watched: [], generation: 0 };
  const stops = [answerPings(model), acknowledgeMaterials(model, state)];
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
