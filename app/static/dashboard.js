// The dashboard: fetches `/` again every few seconds and swaps in the freshly rendered fleet and jobs sections
// (HTML the server rendered and escaped). Logged out meanwhile: on to the login page.
(function () {
  'use strict';
  var EVERY_MS = 5000;
  if (!document.getElementById('dashboard')) return;

  function swap(doc, selector) {
    var fresh = doc.querySelector(selector);
    var old = document.querySelector(selector);
    if (fresh && old) old.replaceWith(document.importNode(fresh, true));
  }
  function note(text) {
    var el = document.getElementById('refresh-note');
    if (el) el.textContent = text;
  }
  function poll() {
    fetch('/', { cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (answer) {
        if (answer.redirected && new URL(answer.url).pathname === '/login') {
          location.assign('/login?next=%2F');
          return null;
        }
        if (!answer.ok) throw new Error('HTTP ' + answer.status);
        return answer.text();
      })
      .then(function (text) {
        if (text === null) return;
        var doc = new DOMParser().parseFromString(text, 'text/html');
        swap(doc, '#fleet');
        swap(doc, '#jobs');
        note('Updated ' + new Date().toLocaleTimeString());
      })
      .catch(function () { note('Could not refresh; retrying…'); })
      .then(function () { setTimeout(poll, EVERY_MS); });
  }
  setTimeout(poll, EVERY_MS);
}());
