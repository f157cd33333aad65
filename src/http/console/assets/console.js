// The console's one script, loaded as a module on every page; each part
// acts only on the elements that ask for it.

// Copy buttons: a button with data-copy="ID" copies the value (or the
// text) of the element ID and says so in the nearest status line.
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    const text = "value" in field ? field.value : field.textContent;
    const status = button.closest(".copy")?.nextElementSibling?.matches("[role=status]")
      ? button.closest(".copy").nextElementSibling
      : button.closest("section")?.querySelector("[role=status]");
    let said = "Copied.";
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard access (an http page other than localhost): leave the
      // value selected for Ctrl+C.
      if ("select" in field) {
        field.select();
      } else {
        const range = document.createRange();
        range.selectNodeContents(field);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
      }
      said = "Selected: press Ctrl+C (or ⌘C) to copy.";
    }
    if (status) status.textContent = said;
  });
}

// Expiry countdowns: an element with data-expires-at (Unix seconds) says
// how long is left, every second, until it says "expired".
const countdowns = document.querySelectorAll("[data-expires-at]");
function tick() {
  const now = Date.now() / 1000;
  for (const el of countdowns) {
    const left = Math.floor(Number(el.dataset.expiresAt) - now);
    if (left <= 0) {
      el.textContent = "expired";
      el.classList.add("expired");
    } else {
      const m = Math.floor(left / 60);
      el.textContent = m > 0 ? `in ${m} min ${left % 60} s` : `in ${left} s`;
    }
  }
}
if (countdowns.length) {
  tick();
  setInterval(tick, 1000);
}

// Live parts: an element with data-refresh="URL" is replaced by what the
// URL answers, every 5 s while the page is visible.
for (const part of document.querySelectorAll("[data-refresh]")) {
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(part.dataset.refresh, { credentials: "same-origin" });
      if (response.ok) part.innerHTML = await response.text();
    } catch {
      // The server is away for a moment: keep what is shown.
    }
  }, 5000);
}
