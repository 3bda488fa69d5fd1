// The backup codes page: Copy, Download (.txt) and Print, since the codes are shown only
// once. Everything happens in the page: the codes are never fetched or sent again, and the
// download is a Blob made here (no second server response that could re-show them).

const list = document.querySelector("[data-backup-codes]");
const actions = document.querySelector("[data-backup-code-actions]");

if (list && actions) {
  const codes = [...list.querySelectorAll("code")].map((code) => code.textContent.trim());
  const status = actions.querySelector("[data-backup-code-status]");
  const text = [
    `${document.querySelector('meta[name="site-name"]')?.content || "Your"} backup codes`,
    "Each code lets you sign in (or reset your password) once. Keep them somewhere private.",
    "",
    ...codes,
    "",
  ].join("\n");

  const say = (words) => {
    status.textContent = words;
  };

  actions.querySelector("[data-copy]").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      say("Copied. Paste them somewhere private.");
    } catch {
      say("Your browser did not allow copying: select the codes above and copy them.");
    }
  });

  actions.querySelector("[data-download]").addEventListener("click", () => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    link.download = "backup-codes.txt";
    document.body.append(link);
    link.click();
    link.remove();
    // After the download has started: the codes should not linger in a blob: URL.
    setTimeout(() => URL.revokeObjectURL(link.href), 0);
    say("Downloaded as backup-codes.txt. Move it somewhere private.");
  });

  actions.querySelector("[data-print]").addEventListener("click", () => window.print());

  actions.hidden = false;
}
