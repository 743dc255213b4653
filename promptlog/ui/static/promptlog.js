// promptlog's viewer and tables: times as "3 min ago" (local time in the title),
// column descriptions and canned queries' SQL folded away. No network, no build.
(function () {
  "use strict";
  var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["h", 3600],
               ["min", 60], ["s", 1]];

  function ago(date) {
    var seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (Math.abs(seconds) < 10) return "just now";
    var future = seconds < 0;
    seconds = Math.abs(seconds);
    for (var i = 0; i < units.length; i++) {
      var count = Math.floor(seconds / units[i][1]);
      if (count >= 1) {
        var unit = units[i][0];
        if (unit.length > 3 && count > 1) unit += "s";
        return future ? "in " + count + " " + unit : count + " " + unit + " ago";
      }
    }
    return "just now";
  }

  function times() {
    document.querySelectorAll("time[datetime]").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      node.textContent = ago(date);
      node.title = date.toLocaleString() + " (" + node.getAttribute("datetime") + ")";
    });
  }

  function fold(node, label, className) {
    if (!node || node.closest("details")) return;
    var details = document.createElement("details");
    details.className = className;
    var summary = document.createElement("summary");
    summary.textContent = label;
    node.parentNode.insertBefore(details, node);
    details.appendChild(summary);
    details.appendChild(node);
  }

  function tables() {
    var descriptions = document.querySelector("dl.column-descriptions");
    if (descriptions) {
      var count = descriptions.querySelectorAll("dt").length;
      fold(descriptions, "Column descriptions (" + count + ")", "pl-fold");
    }
    if (document.body.className.indexOf("query-") !== -1) {
      fold(document.querySelector("pre#sql-query"), "SQL of this query", "pl-fold");
    }
  }

  // Datasette closes every open <details> on a click outside it (for its menus),
  // which would fold a page's diffs away at any click: inside the viewer, close
  // only what lies outside it.
  function keepFolds() {
    var root = document.querySelector("div.pl");
    if (!root) return;
    root.addEventListener("click", function (event) {
      event.stopPropagation();
      document.querySelectorAll("details[open]").forEach(function (node) {
        if (!root.contains(node) && !node.contains(event.target)) node.open = false;
      });
    });
  }

  function start() {
    times();
    tables();
    keepFolds();
    setInterval(times, 30000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
