// Commentguard moderation UI: keyboard moderation on top of plain forms.
//
// Every button here is a real form submission that works without this script; the script
// sends the same forms with fetch (asking for JSON), updates the page in place, and adds
// the keys. It never builds markup from data: text goes in with textContent only.
'use strict';

(function () {
  const NOTICE_KEY = 'commentguard-notice';

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  function say(text, stale) {
    const notice = document.getElementById('notice');
    if (!notice) return;
    notice.textContent = text || '';
    notice.classList.toggle('stale', Boolean(stale));
  }

  async function post(url, fields) {
    const body = new URLSearchParams();
    for (const [name, value] of fields) body.append(name, value);
    if (!fields.some(([name]) => name === 'csrf_token')) body.append('csrf_token', csrfToken());
    const response = await fetch(url, {
      method: 'POST',
      body,
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'X-CSRF-Token': csrfToken() },
    });
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (response.status === 401) {
      say('Your session has ended: reload the page to log in again.', true);
      return null;
    }
    if (!response.ok) {
      say((data && (data.detail || data.title)) || `The request failed (HTTP ${response.status}).`, true);
      return null;
    }
    return data;
  }

  // --- the queue -------------------------------------------------------------------------

  const list = document.getElementById('queue');
  const queueForm = document.getElementById('queue-form');
  const commentForm = document.getElementById('comment-form');
  let current = -1;

  function items() {
    return list ? Array.from(list.querySelectorAll('li.comment:not(.done)')) : [];
  }

  function focusItem(index) {
    const all = items();
    if (all.length === 0) {
      current = -1;
      return;
    }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((item, i) => item.classList.toggle('current', i === current));
    all[current].focus({ preventScroll: true });
    all[current].scrollIntoView({ block: 'nearest' });
  }

  function currentItem() {
    if (commentForm) return document.querySelector('article.comment');
    const all = items();
    return current >= 0 && current < all.length ? all[current] : null;
  }

  function selected() {
    return items().filter((item) => item.querySelector('input[name="item"]').checked);
  }

  function updateSelection() {
    const count = document.getElementById('selected-count');
    const chosen = selected();
    items().forEach((item) => item.classList.toggle('selected', chosen.includes(item)));
    if (count) count.textContent = `${chosen.length} selected`;
  }

  function updateCounts(counts) {
    if (!counts) return;
    document.querySelectorAll('[data-count]').forEach((badge) => {
      const status = badge.getAttribute('data-count');
      if (status in counts) badge.textContent = String(counts[status]);
    });
  }

  function itemById(id) {
    return document.getElementById(`c-${id}`);
  }

  function applyResults(data) {
    const tab = queueForm ? queueForm.getAttribute('data-status') : null;
    let stale = false;
    for (const result of data.results || []) {
      const item = itemById(result.id);
      if (!item) continue;
      const message = item.querySelector('.item-message');
      if (result.result === 'ok') {
        item.setAttribute('data-version', String(result.version));
        item.setAttribute('data-status', result.status);
        if (tab && result.status !== tab) {
          item.classList.add('done');
          item.classList.remove('current', 'selected');
          const box = item.querySelector('input[name="item"]');
          if (box) box.checked = false;
          item.hidden = true;
        }
      } else {
        stale = stale || result.result === 'conflict';
        item.classList.add('stale');
        if (message) {
          message.textContent = result.detail || result.result;
          message.classList.add('stale');
        }
      }
    }
    updateCounts(data.counts);
    say(data.message, stale);
    return stale;
  }

  async function act(url, fields) {
    const index = current;
    const data = await post(url, fields);
    if (!data) return;
    if (commentForm) {
      if (!applyResultsOnDetail(data)) reloadWith(data.message);
      return;
    }
    applyResults(data);
    updateSelection();
    focusItem(index);
  }

  function applyResultsOnDetail(data) {
    const stale = (data.results || []).some((r) => r.result !== 'ok');
    if (stale) {
      const failed = data.results.find((r) => r.result !== 'ok');
      say(failed.detail || failed.result, true);
    }
    return stale;
  }

  function reloadWith(message) {
    try {
      window.sessionStorage.setItem(NOTICE_KEY, message || '');
    } catch (error) {
      // Storage may be off; the page reloads without the message.
    }
    window.location.reload();
  }

  function buttonOf(item, selector) {
    return item ? item.querySelector(selector) : null;
  }

  function pressButton(button) {
    if (!button) return false;
    const form = button.form;
    const fields = [
      ['csrf_token', csrfToken()],
      [button.name, button.value],
    ];
    if (button.hasAttribute('data-bulk')) {
      for (const item of selected()) fields.push(['item', item.querySelector('input[name="item"]').value]);
      if (fields.length === 2) {
        say('Select comments first (x).', true);
        return true;
      }
    }
    const url = button.getAttribute('formaction') || form.getAttribute('action');
    if (button.hasAttribute('data-trust')) {
      trust(url, fields);
    } else if (button.id === 'undo') {
      undo(url);
    } else {
      act(url, fields);
    }
    return true;
  }

  async function trust(url, fields) {
    const data = await post(url, fields);
    if (!data) return;
    if (commentForm) {
      reloadWith(data.message);
      return;
    }
    const { id, trust: level } = data.author;
    document.querySelectorAll(`li.comment[data-author="${CSS.escape(String(id))}"]`).forEach((item) => {
      item.setAttribute('data-trust', level);
      const badge = item.querySelector('.trust');
      if (badge) {
        badge.textContent = level;
        badge.className = `trust trust-${level}`;
      }
      const trustButton = item.querySelector('button[data-trust="trusted"]');
      const banButton = item.querySelector('button[data-trust="banned"]');
      if (trustButton) {
        trustButton.value = level === 'trusted' ? 'normal' : 'trusted';
        trustButton.firstChild.textContent = level === 'trusted' ? 'Untrust author ' : 'Trust author ';
      }
      if (banButton) {
        banButton.value = level === 'banned' ? 'normal' : 'banned';
        banButton.firstChild.textContent = level === 'banned' ? 'Unban author ' : 'Ban author ';
      }
    });
    say(data.message, false);
  }

  async function undo(url) {
    const data = await post(url, [['csrf_token', csrfToken()]]);
    if (!data) return;
    if (data.undone > 0) {
      reloadWith(data.message);
    } else {
      say(data.message, data.stale > 0);
    }
  }

  function onSubmit(event) {
    const button = event.submitter;
    if (!button || button.id === 'logout') return;
    event.preventDefault();
    pressButton(button);
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && target.closest && target.closest('input, textarea, select, [contenteditable]')) {
      if (!(target.matches && target.matches('input[type="checkbox"]'))) return;
    }
    const item = currentItem();
    const form = queueForm || commentForm;
    const handlers = {
      j: () => focusItem(current + 1),
      k: () => focusItem(current - 1),
      a: () => pressButton(buttonOf(item, 'button[data-action="approve"]')),
      s: () => pressButton(buttonOf(item, 'button[data-action="spam"]')),
      d: () => pressButton(buttonOf(item, 'button[data-action="trash"]')),
      t: () => pressButton(buttonOf(item, 'button[data-trust="trusted"]')),
      b: () => pressButton(buttonOf(item, 'button[data-trust="banned"]')),
      x: () => {
        const box = buttonOf(item, 'input[name="item"]');
        if (box) {
          box.checked = !box.checked;
          updateSelection();
        }
      },
      A: () => pressButton(form && form.querySelector('button[data-bulk="approve"]')),
      S: () => pressButton(form && form.querySelector('button[data-bulk="spam"]')),
      D: () => pressButton(form && form.querySelector('button[data-bulk="trash"]')),
      u: () => pressButton(document.getElementById('undo')),
      o: () => {
        const link = buttonOf(item, 'a.details');
        if (link) window.location.assign(link.href);
      },
    };
    const handler = handlers[event.key];
    if (!handler) return;
    event.preventDefault();
    handler();
  }

  function start() {
    try {
      const kept = window.sessionStorage.getItem(NOTICE_KEY);
      if (kept) {
        window.sessionStorage.removeItem(NOTICE_KEY);
        say(kept, false);
      }
    } catch (error) {
      // No storage: nothing was kept.
    }
    const signedOut = document.querySelector('[data-end-session]');
    if (signedOut) {
      // RP-initiated logout: end the session at the identity provider too.
      window.location.assign(signedOut.getAttribute('data-end-session'));
      return;
    }
    for (const form of [queueForm, commentForm]) {
      if (form) form.addEventListener('submit', onSubmit);
    }
    if (list) {
      list.addEventListener('change', updateSelection);
      list.addEventListener('click', (event) => {
        const item = event.target.closest('li.comment');
        if (item) focusItem(items().indexOf(item));
      });
      focusItem(0);
    }
    if (list || commentForm) document.addEventListener('keydown', onKey);
    if (commentForm) {
      const article = document.querySelector('article.comment');
      if (article) article.classList.add('current');
      current = 0;
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
