// Copy buttons: a button with data-copy="ID" copies the value of the
// field ID and says so in the nearest status line.
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    const status = button.closest("section")?.querySelector("[role=status]");
    let said = "Copied.";
    try {
      await navigator.clipboard.writeText(field.value);
    } catch {
      // No clipboard access (an http page other than localhost): leave the
      // value selected for Ctrl+C.
      field.select();
      said = "Selected: press Ctrl+C (or ⌘C) to copy.";
    }
    if (status) status.textContent = said;
  });
}
