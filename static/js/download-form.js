// Forms whose answer is a file to download (a disclosure's package). After a download the
// browser stays on the form, which would go on showing what it showed before (a previous
// error too) with no word that anything was recorded, inviting a second submission. So the
// form sends a random token; the server sets it in the `sg_download` cookie on the file's
// response; seeing it, the page moves to `data-download-next`, where a message says what
// was recorded. An error page replaces this page as usual.
const COOKIE = "sg_download";

function randomToken() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function forget() {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${COOKIE}=; Max-Age=0; Path=/; SameSite=Strict${secure}`;
}

for (const form of document.querySelectorAll("form[data-download-next]")) {
  form.addEventListener("submit", () => {
    const token = randomToken();
    let input = form.querySelector("input[name=download_token]");
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = "download_token";
      form.append(input);
    }
    input.value = token;
    // One record per press: the button waits for the answer (after the form has been sent).
    const button = form.querySelector("button[type=submit]");
    setTimeout(() => { if (button) button.disabled = true; });
    const started = Date.now();
    const timer = setInterval(() => {
      if (document.cookie.split("; ").includes(`${COOKIE}=${token}`)) {
        clearInterval(timer);
        forget();
        location.assign(form.dataset.downloadNext);
      } else if (Date.now() - started > 120_000) {
        clearInterval(timer);
        if (button) button.disabled = false;
      }
    }, 200);
  });
}
