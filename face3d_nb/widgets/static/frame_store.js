// Front end of face3d_nb.widgets.page_link.PageLink, part 1 of 2: the frames the 3D view draws.
// An anywidget module must be one file: page_link.py joins this file and page_link.js (part 2, which
// uses this class and holds the default export) into the widget's _esm, this one first. So this
// file imports and exports nothing.

// Frames by name, "tag:seq": the camera's (the frame grabber offers each frame it sends, through
// globalThis.face3dFrames, while keep_frames is on) and the kernel's own (tag 0, sent as JPEG). Each
// update names its frame; show() puts that frame in the update's material and in the frame quad's
// texture before the update is drawn. A frame that is not (yet) here draws blank until it arrives.
const KEEP = { camera: 16, kernel: 4 };
const BLANK = new ImageData(1, 1);

class FrameStore {
  constructor(model) {
    this.model = model;
    this.bitmaps = new Map(); // name -> ImageBitmap, oldest first
    this.quad = null; // the frame quad's texture model (frame_texture)
    this.quadName = null;
    this.textures = new Map(); // a face material's three.js object -> its own frame texture
    this.waiting = new Map(); // material object -> the name of a frame it wants and lacks
    this.closed = false;
  }

  // A frame the grabber sent (ignored unless the view wants frames).
  offer(name, blob) {
    if (this.model.get("keep_frames")) this.add(name, blob);
  }

  async add(name, blob) {
    const bitmap = await createImageBitmap(blob).catch(() => null);
    if (!bitmap || this.closed) return;
    this.bitmaps.set(name, bitmap);
    const kernel = name.startsWith("0:");
    const same = [...this.bitmaps.keys()].filter((n) => n.startsWith("0:") === kernel);
    for (const old of same.slice(0, Math.max(0, same.length - (kernel ? KEEP.kernel : KEEP.camera)))) {
      this.bitmaps.get(old).close();
      this.bitmaps.delete(old);
    }
    let late = this.quadName === name;
    for (const [material, wanted] of this.waiting) {
      if (wanted === name) {
        this.fill(material, name);
        late = true;
      }
    }
    if (late) {
      this.fillQuad(name);
      this.redraw();
    }
  }

  // The update just applied to material (a three.js ShaderMaterial) names frame name.
  show(material, name) {
    this.fill(material, name);
    this.fillQuad(name);
  }

  fill(material, name) {
    const uniform = material.uniforms && material.uniforms.frame;
    const quad = this.quad && this.quad.obj;
    if (!uniform || !quad) return;
    const bitmap = this.bitmaps.get(name);
    if (bitmap) this.waiting.delete(material);
    else this.waiting.set(material, name);
    let texture = this.textures.get(material);
    if (!texture) {
      // Settings as the quad's (no mipmaps, linear, clamped: a frame of any size stays as it is).
      texture = new quad.constructor();
      for (const key of ["flipY", "minFilter", "magFilter", "generateMipmaps", "wrapS", "wrapT"]) texture[key] = quad[key];
      this.textures.set(material, texture);
    }
    if (bitmap && texture.image !== bitmap) {
      texture.image = bitmap;
      texture.needsUpdate = true;
    }
    uniform.value = bitmap ? texture : null;
  }

  fillQuad(name) {
    const quad = this.quad && this.quad.obj;
    if (!quad) return;
    this.quadName = name;
    const image = this.bitmaps.get(name) || BLANK;
    if (quad.image !== image) {
      quad.image = image;
      quad.needsUpdate = true;
    }
  }

  // Only these materials are watched now: free the others' textures (GPU memory).
  keep(materials) {
    for (const [material, texture] of this.textures) {
      if (!materials.includes(material)) {
        texture.dispose();
        this.textures.delete(material);
        this.waiting.delete(material);
      }
    }
  }

  // Draw again (a frame arrived after its update): pythreejs redraws on a change below the scene.
  redraw() {
    if (this.quad) this.quad.trigger("childchange", this.quad);
  }

  close() {
    this.closed = true;
    for (const bitmap of this.bitmaps.values()) bitmap.close();
    this.bitmaps.clear();
    this.keep([]);
  }
}
