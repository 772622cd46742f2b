// A face's fragment shader for every view (VIEW as in face.vert). Shaded: flat-shaded Blinn-Phong
// with the viewer's three lights, the same formulas as three.js r97's MeshPhongMaterial with
// flatShading (so both transports draw the same picture): an ambient light, a directional key light
// fixed in the scene and a point light in view space. Texture: the camera frame (set by the page:
// page_link.js) at the vertex's image position, unlit. Depth and PNCC: the vertex shader's colour.
// Points: the mesh colour. Every view is drawn at the viewer's opacity.

#define RECIPROCAL_PI 0.31830988618

uniform vec3 diffuse;
uniform vec3 specular;
uniform float shininess;
uniform vec3 ambientColor;
uniform float ambientIntensity;
uniform vec3 keyColor;
uniform float keyIntensity;
uniform vec3 keyDirection;     // world space, towards the light
uniform vec3 pointColor;
uniform float pointIntensity;
uniform vec3 pointPosition;    // view space (the light rides on the camera)

uniform float opacity;
uniform sampler2D frame;

varying vec3 vViewPosition;
varying vec3 vColor;
varying vec2 vUv;

vec3 blinnPhong(vec3 toLight, vec3 lightColor, vec3 normal, vec3 viewDir) {
  float dotNL = clamp(dot(normal, toLight), 0.0, 1.0);
  vec3 halfDir = normalize(toLight + viewDir);
  float dotNH = clamp(dot(normal, halfDir), 0.0, 1.0);
  float dotLH = clamp(dot(toLight, halfDir), 0.0, 1.0);
  float fresnel = exp2((-5.55473 * dotLH - 6.98316) * dotLH);
  vec3 f = (1.0 - specular) * fresnel + specular;
  float d = RECIPROCAL_PI * (shininess * 0.5 + 1.0) * pow(dotNH, shininess);
  // three.js: irradiance = dotNL * colour * PI; diffuse BRDF colour / PI; specular F * G(1/4) * D.
  return dotNL * lightColor * (diffuse + f * (0.25 * 3.14159265359 * d));
}

void main() {
#if VIEW == 0
  // Flat normals from screen-space derivatives: the page never has per-vertex normals.
  vec3 normal = normalize(cross(dFdx(vViewPosition), dFdy(vViewPosition)));
  vec3 viewDir = normalize(vViewPosition);
  vec3 key = normalize((viewMatrix * vec4(keyDirection, 0.0)).xyz);
  vec3 color = ambientColor * ambientIntensity * diffuse;
  color += blinnPhong(key, keyColor * keyIntensity, normal, viewDir);
  color += blinnPhong(normalize(pointPosition + vViewPosition), pointColor * pointIntensity, normal, viewDir);
#elif VIEW == 1
  vec3 color = texture2D(frame, vUv).rgb;
#elif VIEW == 4
  vec3 color = diffuse;
#else
  vec3 color = vColor;
#endif
  gl_FragColor = vec4(color, opacity);
}
