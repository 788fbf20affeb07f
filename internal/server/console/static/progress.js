// Polls the analysis status and reloads the page once the verdict is in.
(function () {
  var box = document.getElementById("progress");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  var label = document.getElementById("progress-status");
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (label && s.status) { label.textContent = s.status; label.className = "status s-" + s.status; }
        if (s.status === "analyzed" || s.status === "failed") { location.reload(); return; }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
