// Runs an incident's key rotation batch by batch while its page is open: each batch is
// one POST that answers with the progress, shown in the progress bar and the status line.
// Without JavaScript the form's button does one batch at a time.

const box = document.getElementById("rotation");
const form = document.getElementById("rotation-form");

async function run() {
  const bar = document.getElementById("rotation-progress");
  const status = document.getElementById("rotation-status");
  const token = form.querySelector('input[name="csrfmiddlewaretoken"]').value;
  form.hidden = true;
  for (;;) {
    let state;
    try {
      const response = await fetch(box.dataset.stepUrl, {
        method: "POST",
        headers: { Accept: "application/json" },
        body: new URLSearchParams({ csrfmiddlewaretoken: token }),
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      state = await response.json();
    } catch {
      status.textContent = "Stopped: the server did not answer. Reload the page to go on.";
      form.hidden = false;
      return;
    }
    bar.max = state.total;
    bar.value = state.seen;
    if (state.done) {
      status.textContent =
        `Done: ${state.seen} rows checked, ${state.changed} re-encrypted with the first key. ` +
        "Now remove the old key from FIELD_ENCRYPTION_KEYS and restart.";
      return;
    }
    status.textContent = `${state.seen} of ${state.total} rows checked, ${state.changed} re-encrypted so far.`;
  }
}

if (box && form && box.dataset.done !== "true") run();
