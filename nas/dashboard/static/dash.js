// nas dashboard: draws the plots from the JSON endpoints and keeps the page live by polling.
// Only textContent and Plotly's own escaping touch user strings; live HTML comes from the
// server, which escapes it (Jinja2 autoescape).
"use strict";
(function () {
  const CONFIG = {displaylogo: false, responsive: true, displayModeBar: true};
  const FONT = {family: "system-ui, sans-serif", size: 12};

  // Nothing hides anything: the toolbar (modebar) has the top strip to itself, the title sits
  // below it, the legend right of the plot area (Plotly widens the right margin to fit it), and
  // the axis titles stay left of and below the plot area, where no legend is.
  function layout(title, xaxis, yaxis, extra) {
    return Object.assign({
      title: {text: title, font: {size: 14}, x: 0.01, xanchor: "left", xref: "container",
        y: 1, yanchor: "top", yref: "container", pad: {t: 30}},
      font: FONT, margin: {l: 60, r: 20, t: 62, b: 45},
      xaxis: {title: {text: xaxis}, automargin: true}, yaxis: {title: {text: yaxis}, automargin: true},
      legend: {orientation: "v", x: 1.02, xanchor: "left", y: 1, yanchor: "top"},
      hovermode: "closest"}, extra || {});
  }

  function byState(d, xs, states, values, numbers) {
    const groups = {};
    for (let i = 0; i < xs.length; i++) {
      const s = states[i];
      (groups[s] = groups[s] || {x: [], y: [], text: []});
      groups[s].x.push(xs[i]); groups[s].y.push(values[i]); groups[s].text.push("trial " + numbers[i]);
    }
    return Object.keys(groups).sort().map(function (s) {
      return {type: "scatter", mode: "markers", name: s.toLowerCase(), x: groups[s].x,
        y: groups[s].y, text: groups[s].text, hoverinfo: "text+y",
        marker: {color: d.colors[s] || "#999", size: 5, opacity: 0.7}};
    });
  }

  function empty(lay, note) {
    lay.annotations = [{text: note, showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5}];
    lay.xaxis.visible = false; lay.yaxis.visible = false;
  }

  const builders = {
    progress: function (d) {
      const traces = byState(d, d.number, d.state, d.value, d.number);
      traces.push({type: "scatter", mode: "lines", name: "best so far", x: d.number, y: d.best,
        line: {color: "#000", width: 2, shape: "hv"}});
      return [traces, layout("Best so far vs trial number", "trial number", "value (" + d.direction + ")")];
    },
    walltime: function (d) {
      const top = Math.max.apply(null, d.time_h.concat([0]));
      const unit = top >= 2 ? ["hours", 1] : (top * 60 >= 2 ? ["minutes", 60] : ["seconds", 3600]);
      const xs = d.time_h.map(function (h) { return h === null ? null : h * unit[1]; });
      const traces = byState(d, xs, d.time_state, d.time_value, d.time_number);
      traces.push({type: "scatter", mode: "lines", name: "best so far", x: xs,
        y: d.time_best, line: {color: "#000", width: 2, shape: "hv"}});
      const lay = layout("Best so far vs wall time", unit[0] + " since the study was created",
        "value (" + d.direction + ")");
      if (!d.time_h.length) { empty(lay, "no finish times stored (imported curves have none)"); }
      return [traces, lay];
    },
    importance: function (d) {
      const title = "Parameter importances (fANOVA, " + d.trials + " completed trials)";
      const lay = layout(title, "importance", "", {margin: {l: 140, r: 20, t: 62, b: 45}});
      if (!d.params.length) { empty(lay, d.note || "no importances"); }
      return [[{type: "bar", orientation: "h", x: d.importance, y: d.params,
        marker: {color: "#1f77b4"}}], lay];
    },
    trial: function (d) {
      const traces = [];
      const fs = d.forecasts.filter(function (f) { return f.mean !== null; });
      if (fs.length) {
        // every forecast is of the value at its horizon (the final step): drawn there, one
        // marker with its q05-q95 error bar each, spread a little around the horizon in the
        // order they were made (earlier ones fainter); the hover says after which step
        const n = fs.length;
        const spread = n > 1 ? Math.min(0.4, 0.04 * (n - 1)) : 0;
        const xs = fs.map(function (f, i) { return f.horizon + (n > 1 ? spread * (i / (n - 1) - 0.5) : 0); });
        traces.push({type: "scatter", mode: "markers", x: xs, y: fs.map(function (f) { return f.mean; }),
          name: "forecast of step " + fs[n - 1].horizon + " (mean, q05-q95)",
          text: fs.map(function (f) {
            return "forecast made after step " + f.step + " of step " + f.horizon +
              "<br>mean " + f.mean.toPrecision(4) +
              (f.q05 !== null && f.q95 !== null ? "<br>q05-q95 " + f.q05.toPrecision(4) + " - " + f.q95.toPrecision(4) : "") +
              (f.p_improve !== null ? "<br>P(improve) " + f.p_improve.toPrecision(3) : "");
          }),
          hoverinfo: "text",
          marker: {size: fs.map(function (f, i) { return i === n - 1 ? 9 : 6; }), color: "#1f77b4",
            opacity: fs.map(function (f, i) { return n === 1 ? 1 : 0.35 + 0.65 * i / (n - 1); }),
            line: {width: 0}},
          error_y: {type: "data", symmetric: false, color: "rgba(31,119,180,0.5)", thickness: 1.5, width: 3,
            array: fs.map(function (f) { return f.q95 === null ? 0 : f.q95 - f.mean; }),
            arrayminus: fs.map(function (f) { return f.q05 === null ? 0 : f.mean - f.q05; })}});
      }
      traces.push({type: "scatter", mode: "lines+markers", x: d.steps, y: d.values,
        name: "observed", line: {color: "#000"}, marker: {size: 4}});
      const ds = d.decisions.filter(function (x) { return x.compared_to !== null; });
      if (ds.length) {
        traces.push({type: "scatter", mode: "lines", x: ds.map(function (x) { return x.step; }),
          y: ds.map(function (x) { return x.compared_to; }), line: {color: "#d62728", dash: "dot", shape: "hv"},
          name: "best value to beat"});
      }
      const stops = d.decisions.filter(function (x) { return x.action !== "CONTINUE"; });
      if (stops.length) {
        traces.push({type: "scatter", mode: "markers", x: stops.map(function (x) { return x.step; }),
          y: stops.map(function (x) {
            const i = d.steps.indexOf(x.step); return i >= 0 ? d.values[i] : null; }),
          text: stops.map(function (x) { return x.action + ": " + x.reason; }), hoverinfo: "text",
          marker: {symbol: "x", size: 12, color: "#d62728"}, name: "stop / audit"});
      }
      return [traces, layout("Trial " + d.number + " (" + d.state.toLowerCase() + ")",
        "step (epoch)", "value (" + d.direction + ")")];
    },
    compare: function (d) {
      const traces = d.curves.map(function (c) {
        return {type: "scatter", mode: "lines", name: "trial " + c.number, x: c.steps, y: c.values};
      });
      return [traces, layout("Curves", "step (epoch)", "value (" + d.direction + ")")];
    },
  };

  function draw(el, fetched) {
    const kind = el.getAttribute("data-plot");
    const src = el.getAttribute("data-src");
    if (!fetched[src]) {  // plots sharing an endpoint share one request
      fetched[src] = fetch(src, {headers: {accept: "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); });
    }
    return fetched[src]
      .then(function (d) {
        const tl = builders[kind](d);
        if (window.Plotly) { return window.Plotly.react(el, tl[0], tl[1], CONFIG); }
      })
      .catch(function (e) { el.setAttribute("data-error", String(e)); });
  }

  let polls = 0;
  function refresh() {
    if (document.hidden) { return; }
    polls++;
    const checked = new Set(Array.from(document.querySelectorAll("input[name=t]:checked"))
      .map(function (x) { return x.value; }));
    fetch(window.location.href, {headers: {accept: "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        const doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          const fresh = doc.getElementById(el.id);
          if (fresh) { el.replaceChildren.apply(el, Array.from(fresh.childNodes)); }
        });
        document.querySelectorAll("input[name=t]").forEach(function (x) {
          if (checked.has(x.value)) { x.checked = true; } });
        const plots = Array.from(document.querySelectorAll("[data-plot]")).filter(function (el) {
          return !el.hasAttribute("data-slow") || polls % 6 === 0; });
        const fetched = {};
        return Promise.all(plots.map(function (el) { return draw(el, fetched); }));
      })
      .then(function () { stamp(""); })
      .catch(function (e) { stamp(" (update failed: " + e + ")"); });
  }

  function stamp(note) {
    const t = document.getElementById("updated");
    if (t) { t.textContent = new Date().toLocaleTimeString(); }
    const s = document.getElementById("live-state");
    if (s) { s.textContent = note; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const fetched = {};
    Promise.all(Array.from(document.querySelectorAll("[data-plot]")).map(function (el) {
      return draw(el, fetched); })).then(function () {
      document.body.setAttribute("data-plots-drawn", "1");
    });
    const s = parseFloat(document.body.getAttribute("data-poll") || "0");
    if (s > 0) { window.setInterval(refresh, s * 1000); }
  });
})();
