// roomwatch's own few lines of script: pages work without it; it only spares a reload.
"use strict";

// Elements with data-refresh="URL" are replaced by that URL's HTML fragment every
// data-interval ms until the fragment says it is done (data-done="true"). Anything but a
// fragment (the sign-in page after the session expired, a job that is gone) reloads the page,
// which then shows the truth; a network error (the agent restarting) is retried.
function followOne(element) {
  const url = element.getAttribute("data-refresh");
  if (!url) return;
  const interval = Number(element.getAttribute("data-interval") || 1000);
  fetch(url, { credentials: "same-origin", cache: "no-store" })
    .then((response) => {
      if (response.redirected || !response.ok) {
        window.location.reload();
        return;
      }
      return response.text().then((html) => {
        const holder = document.createElement("div");
        holder.innerHTML = html; // rendered and escaped by the server
        const fresh = holder.firstElementChild;
        if (!fresh || !fresh.hasAttribute("data-refresh")) {
          window.location.reload();
          return;
        }
        element.replaceWith(fresh);
        if (fresh.getAttribute("data-done") !== "true") {
          setTimeout(() => followOne(fresh), interval);
        }
      });
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
