// A face's vertex shader for every view (face3d_nb/view/view_modes.py) and both mesh transports.
// DECODE 1 (the coefficient transport): the mesh is decoded on the GPU, view = pose * (mean + W a) +
// offset (face3d_nb/view/gpu_packing.py, whose emulate() does the same in numpy); the uniforms are one
// coefficient update (see the protocol table in face3d_nb/widgets/page_link.py). Then defined too:
// COEFFICIENT_GROUPS (G, 0 without a basis) and, with a basis, BASIS_ROWS (texture height),
// BASIS_SLOTS (texel slots per vertex and axis) and BASIS_BITS (16: half floats, 12: bytes; the
// layouts are in gpu_packing's docstring); position is the mean shape, model units.
// DECODE 0 (the position transport): position is the view position the kernel sent; the rows after
// the mesh's vertices are the update's header (face3d_nb/widgets/position_transport.py), which the
// page copies into the uniforms and which are never drawn (z far behind every camera).
// VIEW: 0 shaded, 1 texture, 2 depth, 3 pncc, 4 points. Every view knows each vertex's image
// position from the inverse of the view transform (imageCenter, imageScale: view = (image - center)
// * scale * (1, -1, 1)).
// three.js supplies the camera matrices; written in GLSL ES 1.00 style, which three.js translates
// for WebGL 2.

uniform vec3 imageCenter;
uniform float imageScale;
uniform vec2 frameSize;   // the processed frame's width and height, pixels
uniform vec2 depthRange;  // image z that is black and white in the depth view
uniform float pointSize;

#if DECODE
uniform mat3 pose;
uniform vec3 offset;
attribute float vertexIndex;

#if COEFFICIENT_GROUPS > 0
#define BASIS_WIDTH 2048.0
uniform vec4 coefficients[COEFFICIENT_GROUPS];
uniform highp sampler2D basis;

// Texel i of the basis, row-major within BASIS_WIDTH columns; i < 2^24, so the float maths is exact.
vec4 basisTexel(float i) {
  float row = floor(i / BASIS_WIDTH);
  vec2 uv = vec2(i - row * BASIS_WIDTH + 0.5, row + 0.5) / vec2(BASIS_WIDTH, BASIS_ROWS);
  return texture2D(basis, uv);
}

#if BASIS_BITS == 12
// The bytes of texel i (three.js hands them over as byte / 255).
vec4 basisBytes(float i) {
  return floor(basisTexel(i) * 255.0 + 0.5);
}

// Axis c of groups 2p and 2p + 1 of the vertex whose slots start at texel first: their high bytes
// (slots 2p, 2p + 1) and one texel of both groups' low four bits (slot G + p). Each value u is 12
// bits; its deformation is (u - 2048) times the coefficient's scale, which coefficients include.
float pairDeformation(float first, int p, float c) {
  vec4 low = basisBytes(first + float(3 * (COEFFICIENT_GROUPS + p)) + c);
  vec4 upper = floor(low / 16.0);
  float sum = dot(16.0 * basisBytes(first + float(6 * p) + c) + upper - 2048.0, coefficients[2 * p]);
  if (2 * p + 1 < COEFFICIENT_GROUPS) {
    sum += dot(16.0 * basisBytes(first + float(6 * p + 3) + c) + low - 16.0 * upper - 2048.0, coefficients[2 * p + 1]);
  }
  return sum;
}
#endif
#endif

#endif

#if VIEW == 3
#if DECODE
uniform vec3 meanLow;   // the mean shape's per-axis minimum and extent: PNCC from position itself
uniform vec3 meanSpan;
#else
attribute vec3 pncc;
#endif
#endif

varying vec3 vViewPosition;
varying vec3 vColor;
varying vec2 vUv;

vec3 viewPosition() {
#if DECODE
  vec3 shape = position;
#if COEFFICIENT_GROUPS > 0
  float first = vertexIndex * float(3 * BASIS_SLOTS);
#if BASIS_BITS == 12
  for (int p = 0; p < BASIS_SLOTS - COEFFICIENT_GROUPS; p++) {
    shape += vec3(pairDeformation(first, p, 0.0), pairDeformation(first, p, 1.0), pairDeformation(first, p, 2.0));
  }
#else
  for (int g = 0; g < COEFFICIENT_GROUPS; g++) {
    float i = first + float(3 * g);
    vec4 a = coefficients[g];
    shape += vec3(dot(basisTexel(i), a), dot(basisTexel(i + 1.0), a), dot(basisTexel(i + 2.0), a));
  }
#endif
#endif
  return pose * shape + offset;
#else
  return position;
#endif
}

void main() {
#if !DECODE
  if (position.z > 1e29) {
    gl_Position = vec4(0.0, 0.0, 2.0, 1.0);  // a header row: outside the clip volume
    return;
  }
#endif
  vec3 view = viewPosition();
  vec3 image = view / (imageScale * vec3(1.0, -1.0, 1.0)) + imageCenter;
#if VIEW == 1
  vUv = (image.xy + 0.5) / frameSize;
#elif VIEW == 2
  vColor = vec3(clamp((image.z - depthRange.x) / (depthRange.y - depthRange.x), 0.0, 1.0));
#elif VIEW == 3
#if DECODE
  vColor = (position - meanLow) / meanSpan;
#else
  vColor = pncc;
#endif
#endif
  vec4 mvPosition = modelViewMatrix * vec4(view, 1.0);
  vViewPosition = -mvPosition.xyz;
  gl_PointSize = pointSize;
  gl_Position = projectionMatrix * mvPosition;
}
