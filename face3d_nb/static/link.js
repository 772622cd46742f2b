// Front end of face3d_nb.link.LinkProbe: answers the kernel's pings at once, so it can time the
// round trip. The protocol is described in face3d_nb/link.py's module docstring.

function initialize({ model }) {
  const onMessage = (msg) => {
    if (msg && msg.type === "ping") model.send({ type: "pong", n: msg.n });
  };
  model.on("msg:custom", onMessage);
  model.send({ type: "hello" });
  return () => model.off("msg:custom", onMessage);
}

function render({ model, el }) {
  el.classList.add("face3d-link");
  const show = () => {
    el.textContent = model.get("message");
    el.hidden = !model.get("message");
  };
  model.on("change:message", show);
  show();
  return () => model.off("change:message", show);
}

export default { initialize, render };
