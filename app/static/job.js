// The job page, live: follows /api/v1/job/{id}/events (SSE) and updates the status, the progress bar and the
// current step; refreshes the rendered steps and results now and then, and all of it when the job ends.
// Job data only ever reaches the page through textContent, or as HTML the server rendered (and escaped).
(function () {
  'use strict';
  var TERMINAL = { completed: true, failed: true, cancelled: true, skipped: true };
  var DETAIL_EVERY_MS = 2000;
  var main = document.getElementById('job');
  if (!main || main.dataset.live !== '1' || !main.dataset.events || !window.EventSource) return;

  var best = Number(main.dataset.progress) || 0;
  var finished = false;
  var detailTimer = null;
  var lastDetail = 0;

  function byId(id) { return document.getElementById(id); }
  function setText(id, text) { var el = byId(id); if (el) el.textContent = text; }
  function note(text) { setText('live-note', text); }
  function parse(event) {
    try { var data = JSON.parse(event.data); return data && typeof data === 'object' ? data : {}; }
    catch (ignored) { return {}; }
  }
  function setStatus(status) {
    if (typeof status !== 'string' || !status) return;
    var el = byId('status');
    if (!el) return;
    el.textContent = status;
    el.className = 'status ' + status.replace(/[^a-z_]/g, '');
    main.dataset.status = status;
  }
  function setProgress(value) {
    if (typeof value !== 'number' || !isFinite(value)) return;
    best = Math.max(best, Math.min(100, Math.max(0, value)));
    var bar = byId('progress');
    if (bar) bar.value = best;
    setText('percent', Math.round(best) + '%');
  }
  function setStep(message) {
    if (typeof message === 'string' && message) setText('step', message);
  }

  // Fetch this page again (same token or cookie) and put its freshly rendered `selector` in place.
  function refresh(selector, stillWanted) {
    return fetch(location.href, { cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (answer) {
        if (!answer.ok) throw new Error('HTTP ' + answer.status);
        return answer.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, 'text/html').querySelector(selector);
        var old = document.querySelector(selector);
        if (fresh && old && stillWanted()) old.replaceWith(document.importNode(fresh, true));
      });
  }
  function scheduleDetail() {
    if (detailTimer !== null || finished) return;
    detailTimer = setTimeout(function () {
      detailTimer = null;
      lastDetail = Date.now();
      refresh('#detail', function () { return !finished; }).catch(function () {});
    }, Math.max(0, lastDetail + DETAIL_EVERY_MS - Date.now()));
  }

  var source = new EventSource(main.dataset.events);

  function ended(event) {
    var data = parse(event);
    finished = true;
    source.close();
    if (detailTimer !== null) clearTimeout(detailTimer);
    setStatus(data.status || (event.type === 'error' ? 'failed' : 'completed'));
    setProgress(data.progress);
    note('Finished; loading the results…');
    refresh('#job', function () { return true; }).catch(function () {
      note('Finished. Reload the page to see the results.');
    });
  }

  source.addEventListener('open', function () { main.dataset.connected = '1'; note(''); });
  source.addEventListener('queued', function (event) {
    var data = parse(event);
    setStatus(data.status || 'queued');
    setStep(data.message);
    note('');
  });
  source.addEventListener('progress', function (event) {
    var data = parse(event);
    setStatus(data.status);
    setProgress(data.progress);
    setStep(data.message);
    note('');
    if (TERMINAL[data.status]) return;
    scheduleDetail();
  });
  source.addEventListener('complete', ended);
  source.addEventListener('error', function (event) {
    if (typeof event.data === 'string') { ended(event); return; }  // the job's `error` event
    if (finished) return;  // the connection's own error events
    note(source.readyState === EventSource.CLOSED
      ? 'Live updates stopped; reload the page to see the latest state.'
      : 'Connection lost; reconnecting…');
  });
}());
