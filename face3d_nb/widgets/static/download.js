// Front end of face3d_nb.widgets.download.Downloader: files from the kernel and screenshots of a 3D view
// become browser downloads. The protocol is described in face3d_nb/widgets/download.py's module docstring.

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.style.display = "none";
  document.body.appendChild(link);
  link.click();
  link.remove();
  // The browser has taken the blob once the click is handled; keep it a while for slow starts.
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function targetCanvas(model) {
  const ref = model.get("target");
  if (typeof ref !== "string" || !ref.startsWith("IPY_MODEL_")) throw new Error("no 3D view to take a picture of");
  const target = await model.widget_manager.get_model(ref.slice("IPY_MODEL_".length));
  const views = await Promise.all(Object.values(target.views || {}));
  for (const view of views) {
    const canvas = view.el && view.el.querySelector("canvas");
    if (canvas && canvas.width > 0 && canvas.height > 0) return canvas;
  }
  throw new Error("the 3D view is not shown on this page");
}

function toPng(canvas) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("the browser made no picture"))), "image/png"),
  );
}

function initialize({ model }) {
  const incoming = new Map(); // id -> pieces received so far

  const report = (id, name, size) => model.send({ type: "delivered", id, name, size });
  const fail = (id, error) => {
    console.error("face3d: download failed", error);
    model.send({ type: "failed", id, reason: String((error && error.message) || error) });
  };

  const onFile = (msg, buffers) => {
    const pieces = incoming.get(msg.id) || [];
    pieces.push(buffers[0]);
    if (msg.part < msg.parts - 1) {
      incoming.set(msg.id, pieces);
      return;
    }
    incoming.delete(msg.id);
    const blob = new Blob(pieces, { type: msg.mime || "application/octet-stream" });
    if (blob.size !== msg.size) {
      fail(msg.id, new Error(`${msg.name}: received ${blob.size} of ${msg.size} bytes`));
      return;
    }
    save(blob, msg.name);
    report(msg.id, msg.name, blob.size);
  };

  const onScreenshot = async (msg) => {
    try {
      const blob = await toPng(await targetCanvas(model));
      save(blob, msg.name);
      report(msg.id, msg.name, blob.size);
    } catch (error) {
      fail(msg.id, error);
    }
  };

  const onMessage = (msg, buffers) => {
    if (!msg) return;
    if (msg.type === "file" && buffers && buffers.length === 1) onFile(msg, buffers);
    else if (msg.type === "screenshot") onScreenshot(msg);
  };
  model.on("msg:custom", onMessage);
  return () => model.off("msg:custom", onMessage);
}

function render({ model, el }) {
  el.classList.add("face3d-downloads");
  const show = () => {
    el.textContent = model.get("message");
  };
  model.on("change:message", show);
  show();
  return () => model.off("change:message", show);
}

export default { initialize, render };
