// On phones the header's links fold behind a "Menu" button (a disclosure), so the sticky
// header stays one row. Escape closes it (quick-exit.js closes any open disclosure before
// counting Escape toward "Leave quickly"); so does a click elsewhere.

const button = document.querySelector(".site-menu-button");
const nav = document.getElementById("site-nav");

function setOpen(open) {
  button.setAttribute("aria-expanded", String(open));
  nav.classList.toggle("site-nav--open", open);
}

if (button && nav) {
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    setOpen(open);
    if (open) nav.querySelector("a")?.focus();
  });
  document.addEventListener("click", (event) => {
    if (button.getAttribute("aria-expanded") === "true" && !event.target.closest(".site-header")) {
      setOpen(false);
    }
  });
}
