// payportal dashboard: the little behaviour plain HTML cannot give (loaded with defer; no inline code).
"use strict";

// Copy a one-time secret to the clipboard: <button data-copy="#input-id">.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) { return; }
  var input = document.querySelector(button.getAttribute("data-copy"));
  if (!input) { return; }
  var status = button.closest(".banner") && button.closest(".banner").querySelector("[data-copy-status]");
  var done = function () { if (status) { status.textContent = "Copied to the clipboard."; } };
  input.select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});

// Select a secret's whole text when it gets focus, so it can be copied by keyboard too.
document.addEventListener("focusin", function (event) {
  if (event.target.matches && event.target.matches("input[data-secret]")) { event.target.select(); }
});

// A money-moving form is sent once: a second click while the first is on its way does nothing.
document.addEventListener("submit", function (event) {
  var button = event.target.querySelector("[data-once]");
  if (!button) { return; }
  if (button.getAttribute("aria-disabled") === "true") { event.preventDefault(); return; }
  button.setAttribute("aria-disabled", "true");
});
