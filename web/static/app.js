// roomwatch's own few lines of script: pages work without it; it only spares a reload.
"use strict";

// Elements with data-refresh="URL" are replaced by that URL's HTML fragment every
// data-interval ms until the fragment says it is done (data-done="true").
function followOne(element) {
  const url = element.getAttribute("data-refresh");
  if (!url) return;
  const interval = Number(element.getAttribute("data-interval") || 1000);
  fetch(url, { credentials: "same-origin", cache: "no-store" })
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((html) => {
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const fresh = holder.firstElementChild;
      if (!fresh) return;
      element.replaceWith(fresh);
      if (fresh.getAttribute("data-done") !== "true") {
        setTimeout(() => followOne(fresh), interval);
      }
    })
    .catch(() => setTimeout(() => followOne(element), interval));
}

document.addEventListener("DOMContentLoaded", () => {
  for (const element of document.querySelectorAll("[data-refresh]")) {
    if (element.getAttribute("data-done") !== "true") {
      setTimeout(() => followOne(element), Number(element.getAttribute("data-interval") || 1000));
    }
  }
});
