// loopline dashboard: draws every <div class="chart"> with the vendored ECharts, from the JSON block beside it;
// asks before forms marked data-confirm. No inline script anywhere (the page's Content-Security-Policy).
"use strict";
(function () {
  function drawCharts() {
    if (typeof echarts === "undefined") { return; }
    document.querySelectorAll("div.chart").forEach(function (el) {
      var block = document.getElementById(el.dataset.option);
      if (!block) { return; }
      var option = JSON.parse(block.textContent);
      var chart = echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option);
      el.dataset.drawn = "yes";
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(); confirmForms(); });
})();
