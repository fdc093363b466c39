/* mt5gate console: live quotes over /v1/stream, the candle and latency charts, small helpers.
   Everything else is server-rendered and refreshed by htmx. No build step. */
(function () {
  "use strict";

  /* A fragment the user is in (typing in it, or on one of its buttons with the keyboard) is
     not refreshed under their fingers: a swap would drop the keyboard focus to the page. */
  window.mt5gateIdle = function (id) {
    var root = document.getElementById(id);
    var active = document.activeElement;
    if (!root || !active || active === root || !root.contains(active)) return true;
    return !(active.tagName === "INPUT" || active.matches(":focus-visible"));
  };

  function localTimes(root) {
    root.querySelectorAll(".time-ms").forEach(function (cell) {
      var ms = Number(cell.dataset.ms);
      if (ms > 0) cell.textContent = new Date(ms).toISOString().replace("T", " ").slice(0, 19);
    });
  }

  /* The book refreshes every 2 s, unless the user is in it (a partial close, a Close button). */
  function refreshBook() {
    var book = document.getElementById("book");
    if (book) setInterval(function () { if (window.mt5gateIdle("book")) htmx.trigger(book, "tick"); }, 2000);
  }

  /* A refusal the console itself answers (403 CSRF or origin, 404, 422 close-all phrase) is an
     alert fragment: show it where the result would go (htmx swaps only 2xx by default). */
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status >= 400 && status < 500) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  /* A confirmation goes away once its order was sent, or when dismissed. */
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.id === "confirm-form" && event.detail.successful) {
      var panel = document.getElementById("order-confirm");
      if (panel) panel.remove();
    }
  });
  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-dismiss]");
    if (target) {
      var panel = document.getElementById(target.dataset.dismiss);
      if (panel) panel.remove();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    localTimes(event.target);
    if (event.target.id === "results") htmx.trigger(document.body, "refresh");
  });

  /* ------------------------------------------------------------------ live quotes */
  /* Each tick's arrival in the DOM, for the benchmark: [tick time_msc, wall ms after the update]. */
  window.mt5gateTicks = [];

  function quotes() {
    var table = document.getElementById("quotes");
    if (!table) return;
    var account = table.dataset.account;
    var symbols = table.dataset.symbols.split(",").filter(Boolean);
    var state = document.getElementById("stream-state");
    var rows = {};
    table.querySelectorAll("tr[data-symbol]").forEach(function (row) { rows[row.dataset.symbol] = row; });

    function show(tick) {
      var row = rows[tick.symbol];
      if (!row) return;
      row.querySelector(".bid").textContent = tick.bid;
      row.querySelector(".ask").textContent = tick.ask;
      row.querySelector(".time").textContent = new Date(tick.time_msc).toISOString().slice(11, 23);
      row.dataset.timeMsc = tick.time_msc;
      if (window.mt5gateTicks.length < 100000) {
        window.mt5gateTicks.push([tick.time_msc, performance.timeOrigin + performance.now()]);
      }
    }

    function connect() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + location.host + "/v1/stream");
      socket.onopen = function () {
        socket.send(JSON.stringify({ op: "subscribe", account: account, ticks: symbols }));
        state.textContent = "live";
      };
      socket.onmessage = function (event) {
        var message = JSON.parse(event.data);
        if (message.type === "tick") show(message.data);
        else if (message.type === "error") state.textContent = message.problem.title + ": " + message.problem.detail;
      };
      socket.onclose = function () {
        state.textContent = "disconnected; reconnecting…";
        setTimeout(connect, 2000);
      };
    }
    if (symbols.length) connect(); else state.textContent = "no symbols to watch";
  }

  /* ------------------------------------------------------------------ charts */
  function candles() {
    var box = document.getElementById("chart");
    if (!box || !window.LightweightCharts) return;
    var chart = LightweightCharts.createChart(box, { autoSize: true, timeScale: { timeVisible: true } });
    var series = chart.addCandlestickSeries();
    var symbol = document.getElementById("chart-symbol");
    var timeframe = document.getElementById("chart-timeframe");
    var state = document.getElementById("chart-state");
    var shown = "";

    function load() {
      var wanted = symbol.value + "/" + timeframe.value;
      var url = "/console/accounts/" + box.dataset.account + "/chart.json?symbol=" +
        encodeURIComponent(symbol.value) + "&timeframe=" + encodeURIComponent(timeframe.value);
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
        .then(function (answer) {
          if (!answer[0]) { state.textContent = answer[1].title || answer[1].detail || "chart unavailable"; return; }
          var digits = answer[1].digits;
          series.applyOptions({ priceFormat: { type: "price", precision: digits, minMove: Math.pow(10, -digits) } });
          series.setData(answer[1].bars);
          series.setMarkers(answer[1].markers);
          if (wanted !== shown) { chart.timeScale().fitContent(); shown = wanted; }
          box.dataset.bars = answer[1].bars.length;
          box.dataset.markers = answer[1].markers.length;
          state.textContent = answer[1].bars.length + " bars, " + answer[1].markers.length + " entries and exits";
        }).catch(function () { state.textContent = "chart unavailable"; });
    }
    symbol.addEventListener("change", load);
    timeframe.addEventListener("change", load);
    load();
    setInterval(load, 5000);
  }

  function latency() {
    var box = document.getElementById("latency");
    if (!box || !window.LightweightCharts) return;
    var chart = LightweightCharts.createChart(box, { autoSize: true, timeScale: { timeVisible: true, secondsVisible: true } });
    var p50 = chart.addLineSeries({ color: "#0969da", title: "p50 ms", lineWidth: 2 });
    var p99 = chart.addLineSeries({ color: "#cf222e", title: "p99 ms", lineWidth: 2 });
    var state = document.getElementById("latency-state");
    function load() {
      fetch("/console/accounts/" + box.dataset.account + "/latency.json", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (points) {
          if (!Array.isArray(points)) { state.textContent = "latency unavailable"; return; }
          p50.setData(points.map(function (p) { return { time: p.time_ms / 1000, value: p.p50_ms }; }));
          p99.setData(points.map(function (p) { return { time: p.time_ms / 1000, value: p.p99_ms }; }));
          box.dataset.points = points.length;
          var last = points[points.length - 1];
          state.textContent = last ? "last 5 s: " + last.calls + " calls, p50 " + last.p50_ms + " ms, p99 " + last.p99_ms + " ms" : "no calls yet";
        }).catch(function () { state.textContent = "latency unavailable"; });
    }
    load();
    setInterval(load, 5000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    refreshBook();
    quotes();
    candles();
    latency();
  });
})();
