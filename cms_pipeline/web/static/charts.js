/* Small inline-SVG charts (no library): a tile map, bar charts and a histogram. Every
   chart is an <svg role="img"> named by its <title> and described by its <desc>, so a
   screen reader announces what it shows; the numbers are also in the tables beside. */
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  let chartCount = 0;

  function el(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function frame(container, width, height, title, description) {
    const id = `chart-${++chartCount}`;
    const svg = el("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width: width,
      height: height,
      role: "img",
      "aria-labelledby": `${id}-title ${id}-desc`,
      "data-chart": container.id,
    });
    svg.appendChild(el("title", { id: `${id}-title` }, title));
    svg.appendChild(el("desc", { id: `${id}-desc` }, description));
    container.replaceChildren(svg);
    return svg;
  }

  // Sequential blues, light to dark. The label's ink is pure black or white, whichever
  // contrasts more with the tile: at the switch (WCAG relative luminance 0.179) both reach
  // 4.58:1 (a softer black such as #1a1a1a would leave tiles below 4.5:1 either way).
  const LIGHT = [239, 243, 255];
  const DARK = [8, 48, 107];
  function luminance(rgb) {
    const [r, g, b] = rgb.map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function shade(t) {
    const c = LIGHT.map((l, i) => Math.round(l + (DARK[i] - l) * t));
    return { fill: `rgb(${c.join(",")})`, ink: luminance(c) > 0.179 ? "#000000" : "#ffffff" };
  }

  /* items: [{label, value, text, name}] keyed by a USPS label in window.STATE_TILES */
  function tileMap(container, items, title, description) {
    const size = 56;
    const gap = 4;
    const svg = frame(container, 11 * (size + gap), 8 * (size + gap), title, description);
    const values = items.filter((i) => i.value !== null && i.value !== undefined).map((i) => i.value);
    const low = Math.min(...values);
    const high = Math.max(...values);
    const spare = [...window.STATE_TILE_SPARE];
    for (const item of items) {
      const place = window.STATE_TILES[item.label] || spare.shift();
      if (!place) continue;
      const [col, row] = place;
      const has = item.value !== null && item.value !== undefined;
      const t = has && high > low ? (item.value - low) / (high - low) : has ? 0.5 : 0;
      const colour = has ? shade(t) : { fill: "#e0e0e0", ink: "#1a1a1a" };
      const g = el("g", {
        transform: `translate(${col * (size + gap)},${row * (size + gap)})`,
        "data-state": item.label,
      });
      g.appendChild(el("title", {}, `${item.name}: ${item.text}`));
      g.appendChild(el("rect", { width: size, height: size, rx: 4, fill: colour.fill }));
      g.appendChild(
        el("text", { x: size / 2, y: 22, "text-anchor": "middle", fill: colour.ink,
          "font-size": 15, "font-weight": 700 }, item.label)
      );
      g.appendChild(
        el("text", { x: size / 2, y: 42, "text-anchor": "middle", fill: colour.ink,
          "font-size": 10 }, item.short)
      );
      svg.appendChild(g);
    }
    return svg;
  }

  /* items: [{label, value, text}], drawn as horizontal bars (long labels fit) */
  function barChart(container, items, title, description) {
    const labelWidth = 250;
    const barArea = 380;
    const row = 24;
    const height = Math.max(row * items.length + 10, 40);
    const svg = frame(container, labelWidth + barArea + 110, height, title, description);
    const high = Math.max(...items.map((i) => i.value), 0) || 1;
    items.forEach((item, index) => {
      const y = 5 + index * row;
      const g = el("g", {});
      g.appendChild(el("title", {}, `${item.label}: ${item.text}`));
      const label = item.label.length > 30 ? `${item.label.slice(0, 29)}…` : item.label;
      g.appendChild(el("text", { x: labelWidth - 6, y: y + 15, "text-anchor": "end",
        "font-size": 12, fill: "#1a1a1a" }, label));
      const w = Math.max((item.value / high) * barArea, 1);
      g.appendChild(el("rect", { x: labelWidth, y: y + 3, width: w, height: row - 8, fill: "#0b4f8a" }));
      g.appendChild(el("text", { x: labelWidth + w + 6, y: y + 15, "font-size": 12,
        fill: "#1a1a1a" }, item.text));
      svg.appendChild(g);
    });
    return svg;
  }

  /* items: [{label, value, text}] as vertical columns (few items: years) */
  function columnChart(container, items, title, description) {
    const col = 90;
    const height = 200;
    const svg = frame(container, Math.max(col * items.length + 40, 200), height + 40, title, description);
    const high = Math.max(...items.map((i) => i.value), 0) || 1;
    items.forEach((item, index) => {
      const x = 30 + index * col;
      const h = Math.max((item.value / high) * (height - 30), 1);
      const g = el("g", {});
      g.appendChild(el("title", {}, `${item.label}: ${item.text}`));
      g.appendChild(el("rect", { x: x, y: height - h, width: col - 30, height: h, fill: "#0b4f8a" }));
      g.appendChild(el("text", { x: x + (col - 30) / 2, y: height - h - 6, "text-anchor": "middle",
        "font-size": 12, fill: "#1a1a1a" }, item.text));
      g.appendChild(el("text", { x: x + (col - 30) / 2, y: height + 18, "text-anchor": "middle",
        "font-size": 12, fill: "#1a1a1a" }, item.label));
      svg.appendChild(g);
    });
    return svg;
  }

  /* bins: [{low, high, count}] over [0, 1] */
  function histogram(container, bins, title, description) {
    const width = 620;
    const height = 220;
    const left = 50;
    const bottom = 30;
    const svg = frame(container, width, height + bottom, title, description);
    const high = Math.max(...bins.map((b) => b.count), 0) || 1;
    const right = 24;
    const barWidth = (width - left - right) / bins.length;
    svg.appendChild(el("line", { x1: left, y1: height, x2: width - right, y2: height, stroke: "#4a4a4a" }));
    svg.appendChild(el("text", { x: left - 6, y: 14, "text-anchor": "end", "font-size": 11,
      fill: "#1a1a1a" }, String(high)));
    svg.appendChild(el("text", { x: left - 6, y: height, "text-anchor": "end", "font-size": 11,
      fill: "#1a1a1a" }, "0"));
    bins.forEach((bin, index) => {
      const h = (bin.count / high) * (height - 10);
      const x = left + index * barWidth;
      const g = el("g", {});
      g.appendChild(el("title", {}, `${bin.low.toFixed(2)}–${bin.high.toFixed(2)}: ${bin.count}`));
      g.appendChild(el("rect", { x: x + 1, y: height - h, width: barWidth - 2, height: h, fill: "#0b4f8a" }));
      svg.appendChild(g);
    });
    for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
      svg.appendChild(el("text", { x: left + tick * (width - left - right), y: height + 18,
        "text-anchor": "middle", "font-size": 11, fill: "#1a1a1a" }, tick.toFixed(2)));
    }
    return svg;
  }

  window.Charts = { tileMap, barChart, columnChart, histogram };
})();
