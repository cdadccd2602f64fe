// Draws every chart of a page: each .chart holds its Plotly figure as JSON (never markup), made on the server.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const element of document.querySelectorAll(".chart")) {
    const source = element.querySelector('script[type="application/json"]');
    const figure = JSON.parse(source.textContent);
    Plotly.newPlot(element, figure.data, figure.layout, {responsive: true, displaylogo: false});
  }
});
