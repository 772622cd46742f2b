// Front end of face3d_nb.widgets.plots.PosePlot: the last seconds of pose and expression on a canvas.
// The protocol is described in face3d_nb/widgets/plots.py's module docstring.
//
// One Plot per model, made in initialize, keeps the samples and draws every view's canvas; a view
// (render) only adds its canvas. anywidget gives initialize and each render a model proxy of their
// own, so a map keyed by the model would not find the Plot from render: the default export is a
// factory, called once per model, whose closure holds that model's Plot.

const COLORS = ["#e53935", "#43a047", "#1e88e5", "#8e24aa", "#fb8c00", "#00897b", "#6d4c41", "#d81b60",
  "#3949ab", "#7cb342", "#546e7a", "#c0ca33", "#5e35b1"];
const REPORT_MS = 2000;
const MARGIN = { left: 44, right: 8, top: 16, bottom: 6 };

// Per model: the samples, the canvases of its views and the redraw scheduling.
class Plot {
  constructor(model) {
    this.model = model;
    this.rows = [];
    this.canvases = new Set();
    this.scheduled = false;
    this.draws = 0;
    this.drawTime = 0;
    this.lastReport = performance.now();
    this.greeted = false;
    model.on("msg:custom", (msg, buffers) => this.onMessage(msg, buffers));
    model.on("change:window", () => this.schedule());
    model.on("change:n_expression", () => this.schedule());
  }

  onMessage(msg, buffers) {
    if (!msg) return;
    if (msg.type === "clear") {
      this.rows = [];
    } else if (msg.type === "samples" && buffers && buffers.length === 1) {
      const view = buffers[0];
      const data = new Float64Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
      for (let i = 0; i < msg.rows; i++) this.rows.push(data.subarray(i * msg.columns, (i + 1) * msg.columns));
      const newest = this.rows.length ? this.rows[this.rows.length - 1][0] : 0;
      const oldest = newest - this.model.get("window");
      let keep = 0;
      while (keep < this.rows.length && this.rows[keep][0] < oldest) keep++;
      if (keep) this.rows = this.rows.slice(keep);
    } else {
      return;
    }
    this.schedule();
  }

  schedule() {
    if (this.scheduled || this.canvases.size === 0) return;
    this.scheduled = true;
    // Animation frames do not run in hidden tabs: a hidden plot costs nothing.
    requestAnimationFrame(() => {
      this.scheduled = false;
      const start = performance.now();
      for (const canvas of this.canvases) this.draw(canvas);
      this.draws += 1;
      this.drawTime += performance.now() - start;
      this.report();
    });
  }

  report() {
    const now = performance.now();
    if (now - this.lastReport < REPORT_MS) return;
    this.model.send({ type: "cost", draws: this.draws, draw_ms: this.drawTime / this.draws });
    this.draws = 0;
    this.drawTime = 0;
    this.lastReport = now;
  }

  draw(canvas) {
    const width = this.model.get("width");
    const height = this.model.get("height");
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const nExpr = this.model.get("n_expression");
    const panels = [
      { title: "pose (degrees)", labels: ["yaw", "pitch", "roll"], first: 1, minRange: 30, step: 15 },
    ];
    if (nExpr > 0) {
      const labels = Array.from({ length: nExpr }, (_, i) => `exp ${i + 1}`);
      panels.push({ title: "expression", labels, first: 4, minRange: 1, step: 0 });
    }
    const panelHeight = height / panels.length;
    const windowS = this.model.get("window");
    const newest = this.rows.length ? this.rows[this.rows.length - 1][0] : 0;
    panels.forEach((panel, p) => {
      const top = p * panelHeight + MARGIN.top;
      const plotHeight = panelHeight - MARGIN.top - MARGIN.bottom;
      const plotWidth = width - MARGIN.left - MARGIN.right;
      let range = panel.minRange;
      for (const row of this.rows) {
        for (let k = 0; k < panel.labels.length; k++) {
          const v = Math.abs(row[panel.first + k]);
          if (v > range) range = v;
        }
      }
      if (panel.step) range = Math.ceil(range / panel.step) * panel.step;
      const x = (t) => MARGIN.left + ((t - newest + windowS) / windowS) * plotWidth;
      const y = (v) => top + plotHeight / 2 - (v / range) * (plotHeight / 2);
      ctx.strokeStyle = "#ccc";
      ctx.lineWidth = 1;
      ctx.strokeRect(MARGIN.left, top, plotWidth, plotHeight);
      ctx.beginPath();
      ctx.moveTo(MARGIN.left, y(0));
      ctx.lineTo(MARGIN.left + plotWidth, y(0));
      ctx.stroke();
      ctx.fillStyle = "#555";
      ctx.font = "11px sans-serif";
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      const digits = range >= 10 ? 0 : 1;
      ctx.fillText(range.toFixed(digits), MARGIN.left - 4, top);
      ctx.fillText("0", MARGIN.left - 4, y(0));
      ctx.fillText((-range).toFixed(digits), MARGIN.left - 4, top + plotHeight);
      ctx.textAlign = "left";
      ctx.textBaseline = "alphabetic";
      let legendX = MARGIN.left;
      ctx.fillText(panel.title, legendX, top - 4);
      legendX += ctx.measureText(panel.title).width + 12;
      panel.labels.forEach((label, k) => {
        const color = COLORS[(panel.first - 1 + k) % COLORS.length];
        ctx.strokeStyle = color;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        let drawing = false;
        for (const row of this.rows) {
          const v = row[panel.first + k];
          if (Number.isNaN(v)) {
            drawing = false;
            continue;
          }
          if (drawing) ctx.lineTo(x(row[0]), y(v));
          else ctx.moveTo(x(row[0]), y(v));
          drawing = true;
        }
        ctx.stroke();
        ctx.fillStyle = color;
        ctx.fillText(label, legendX, top - 4);
        legendX += ctx.measureText(label).width + 10;
      });
    });
  }

  attach(canvas) {
    // The kernel answers with the samples it keeps: the first view shows the last seconds at once.
    if (!this.greeted) this.model.send({ type: "hello" });
    this.greeted = true;
    this.canvases.add(canvas);
    this.schedule();
  }

  detach(canvas) {
    this.canvases.delete(canvas);
  }
}

function renderView(plot, { model, el }) {
  el.classList.add("face3d-plot");
  const canvas = document.createElement("canvas");
  el.appendChild(canvas);
  plot.attach(canvas);
  const resize = () => plot.schedule();
  model.on("change:width", resize);
  model.on("change:height", resize);
  return () => {
    model.off("change:width", resize);
    model.off("change:height", resize);
    plot.detach(canvas);
  };
}

export default () => {
  let plot = null;
  return {
    initialize({ model }) {
      plot = new Plot(model);
    },
    render: (view) => renderView(plot, view),
  };
};
