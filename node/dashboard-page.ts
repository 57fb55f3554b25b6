/**
 * The web dashboard: one static page (HTML, inline CSS, inline JS; no build step, no external URL) that polls the
 * node's JSON API. It holds no data itself, so it is served without a token; its API calls send the token the
 * operator gives it (`#token=...` in the URL, or the form it shows on a 401) as `Authorization: Bearer`.
 *
 * Everything from the API is put into the page with textContent, never as HTML: member metadata and file names come
 * from other members and are not trusted. The inline script and style are allowed by hash in the page's
 * Content-Security-Policy (see dashboard.ts), so keep them free of backticks and `${`: this is a String.raw template.
 */
export const dashboardHtml = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>meshos dashboard</title>
<style>
:root {
  --bg: #f5f6f8; --card: #fff; --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #2f5bd3;
  --alive: #17a34a; --suspect: #d98a04; --dead: #dc2626; --left: #8a94a6;
  --bar: #c7d4f5; --bar-fg: #2f5bd3;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #111419; --card: #1a1e26; --fg: #e6e9ef; --muted: #97a0b3; --line: #2b313d; --accent: #7ea2ff; --bar: #2c3a5e; --bar-fg: #7ea2ff; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; padding: 14px 24px; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0; letter-spacing: .02em; }
header h1 span { color: var(--muted); font-weight: 400; }
#live { margin-left: auto; display: flex; align-items: center; gap: 8px; color: var(--muted); font-size: 13px; }
#live .dot { width: 9px; height: 9px; border-radius: 50%; background: var(--left); }
#live.ok .dot { background: var(--alive); }
#live.err .dot { background: var(--dead); }
main { max-width: 1280px; margin: 0 auto; padding: 20px 24px 40px; display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px 16px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
section h2 { font-size: 15px; margin: 0 0 10px; display: flex; align-items: baseline; gap: 10px; }
section h2 .sub { font-weight: 400; color: var(--muted); font-size: 13px; }
.stale { opacity: .55; }
.note { color: var(--muted); font-style: italic; margin: 6px 0; }
.error { color: var(--dead); margin: 6px 0; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; padding: 6px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td { padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: middle; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.wrap { overflow-x: auto; }
.badge { display: inline-block; min-width: 64px; text-align: center; padding: 2px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; color: #fff; background: var(--left); }
.badge.alive { background: var(--alive); }
.badge.suspect { background: var(--suspect); }
.badge.dead { background: var(--dead); }
.badge.left { background: var(--left); }
tr.self td:first-child { box-shadow: inset 3px 0 0 var(--accent); }
.you { color: var(--accent); font-size: 11px; font-weight: 600; margin-left: 6px; }
.chips { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 10px; }
.chip { border: 1px solid var(--line); border-radius: 999px; padding: 2px 10px; font-size: 13px; }
.chip b { margin-right: 4px; }
.chip.alive b { color: var(--alive); } .chip.suspect b { color: var(--suspect); } .chip.dead b { color: var(--dead); } .chip.left b { color: var(--left); }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
.kv dt { color: var(--muted); }
.kv dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.bar { position: relative; height: 20px; min-width: 90px; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; overflow: hidden; }
.bar > i { position: absolute; left: 0; top: 0; bottom: 0; background: var(--bar); }
.bar > span { position: relative; display: block; padding: 0 6px; font-size: 12px; line-height: 18px; white-space: nowrap; }
.warn { color: var(--suspect); font-weight: 600; }
form { display: flex; gap: 8px; margin-top: 10px; flex-wrap: wrap; }
input[type=text], input[type=password] { flex: 1; min-width: 200px; padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); font: inherit; }
button { padding: 6px 12px; border: 1px solid var(--accent); border-radius: 6px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
#auth { max-width: 560px; margin: 40px auto; }
[hidden] { display: none !important; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>meshos <span id="node-title">dashboard</span></h1>
  <div id="live" class="err" title="when this page last heard from the node"><span class="dot"></span><span id="live-text">connecting…</span></div>
</header>
<section id="auth" hidden>
  <h2>This node's API needs a token</h2>
  <p class="note" id="auth-why">Create one on the node with <span class="mono">mesh token create --read-only</span> and paste it here, or open this page as <span class="mono">…/#token=TOKEN</span>. It is kept only in this browser tab.</p>
  <form id="auth-form" autocomplete="off">
    <input id="auth-token" type="password" placeholder="API token" aria-label="API token">
    <button type="submit">Use token</button>
  </form>
</section>
<main id="main">
  <section id="node">
    <h2>This node</h2>
    <div class="body"><p class="note">loading…</p></div>
  </section>
  <section id="storage">
    <h2>Storage on this node <span class="sub">replica ring</span></h2>
    <div class="body"><p class="note">loading…</p></div>
    <form id="lookup-form" autocomplete="off">
      <input id="lookup-key" type="text" placeholder="a key, to see which members hold it" aria-label="key">
      <button type="submit">Find replicas</button>
    </form>
    <div id="lookup"></div>
  </section>
  <section id="members" class="wide">
    <h2>Members <span class="sub" id="members-sub"></span></h2>
    <div class="body"><p class="note">loading…</p></div>
  </section>
  <section id="cluster" class="wide">
    <h2>Data balance and load <span class="sub">figures each member reports about itself</span></h2>
    <div class="body"><p class="note">loading…</p></div>
  </section>
  <section id="tasks">
    <h2>Tasks</h2>
    <div class="body"><p class="note">loading…</p></div>
  </section>
  <section id="files">
    <h2>Files <span class="sub">pinned anywhere in the mesh</span></h2>
    <div class="body"><p class="note">loading…</p></div>
  </section>
</main>
<script>
'use strict'
;(function () {
  var TOKEN_KEY = 'meshos.dashboard.token'
  var token = null
  var needToken = false
  var clockOffset = 0 // node clock minus browser clock, from the Date header
  var members = [] // last /v1/members answer, for names and states elsewhere
  var self = null

  // A token in the fragment never reaches the server or its logs; take it, keep it for this tab, and drop it from
  // the address bar and history.
  function tokenFromHash () {
    var m = /(?:^#|&)token=([^&]*)/.exec(location.hash)
    if (!m) return false
    try { token = decodeURIComponent(m[1]) || null } catch (e) { token = null }
    try { if (token) sessionStorage.setItem(TOKEN_KEY, token) } catch (e) {}
    history.replaceState(null, '', location.pathname + location.search)
    return true
  }
  if (!tokenFromHash()) try { token = sessionStorage.getItem(TOKEN_KEY) } catch (e) {}

  function $ (id) { return document.getElementById(id) }
  function h (tag, attrs) {
    var e = document.createElement(tag)
    if (attrs) for (var k in attrs) {
      var v = attrs[k]
      if (v == null || v === false) continue
      if (k === 'text') e.textContent = String(v)
      else if (k === 'class') e.className = v
      else e.setAttribute(k, String(v))
    }
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i])
    return e
  }
  function add (parent, c) {
    if (c == null || c === false) return
    if (Array.isArray(c)) { for (var i = 0; i < c.length; i++) add(parent, c[i]); return }
    parent.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)))
  }
  function body (id) { return $(id).querySelector('.body') }
  function fill (id) {
    var b = body(id)
    b.replaceChildren()
    for (var i = 1; i < arguments.length; i++) add(b, arguments[i])
    $(id).classList.remove('stale')
  }
  function note (text) { return h('p', { class: 'note', text: text }) }

  function shortId (id) { return typeof id === 'string' && id.length > 18 ? id.slice(0, 8) + '…' + id.slice(-6) : String(id) }
  function peer (id) { return h('span', { class: 'mono', title: id, text: shortId(id) }) }
  function badge (state) { return h('span', { class: 'badge ' + state, text: state }) }
  function duration (ms) {
    if (!(ms >= 0)) return '-'
    var s = Math.floor(ms / 1000)
    if (s < 60) return s + 's'
    var mi = Math.floor(s / 60)
    if (mi < 60) return mi + 'm ' + (s % 60) + 's'
    var hr = Math.floor(mi / 60)
    if (hr < 48) return hr + 'h ' + (mi % 60) + 'm'
    return Math.floor(hr / 24) + 'd ' + (hr % 24) + 'h'
  }
  function bytes (n) {
    if (!(n >= 0)) return '-'
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++ }
    return (i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)) + ' ' + u[i]
  }
  function pct (x) { return (x * 100).toFixed(1) + '%' }
  function num (n) { return typeof n === 'number' ? n.toLocaleString('en') : '-' }
  function bar (fraction, label) {
    var f = Math.max(0, Math.min(1, fraction || 0))
    var b = h('div', { class: 'bar', title: label }, h('i'), h('span', { text: label }))
    b.firstChild.style.width = (f * 100) + '%'
    return b
  }
  function words (camel) { return camel.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase() }
  function table (headers, rows, numeric) {
    return h('div', { class: 'wrap' }, h('table', null,
      h('thead', null, h('tr', null, headers.map(function (x, i) { return h('th', { class: numeric && numeric[i] ? 'num' : null, text: x }) }))),
      h('tbody', null, rows)))
  }
  function td (content, cls) { return h('td', { class: cls }, content) }

  // ---------------------------------------------------------------------------------------------------- API calls

  function NotAvailable () {}
  function ApiError (status, message) { this.status = status; this.message = message }

  function api (path) {
    var headers = {}
    if (token) headers.authorization = 'Bearer ' + token
    var ctl = new AbortController()
    var timer = setTimeout(function () { ctl.abort() }, 10000)
    return fetch(path, { headers: headers, cache: 'no-store', signal: ctl.signal }).then(function (res) {
      clearTimeout(timer)
      var date = Date.parse(res.headers.get('date') || '')
      if (date > 0) clockOffset = date - Date.now()
      if (res.status === 401) { askForToken(); throw new ApiError(401, 'the API needs a valid token') }
      return res.json().catch(function () { return null }).then(function (j) {
        // 404 means the route itself is missing: that subsystem has not landed on this node.
        if (res.status === 404 || res.status === 405) throw new NotAvailable()
        if (!res.ok) throw new ApiError(res.status, (j && j.error && j.error.message) || ('HTTP ' + res.status))
        return j
      })
    }, function (err) { clearTimeout(timer); throw err })
  }

  function askForToken () {
    if (needToken) return
    needToken = true
    try { sessionStorage.removeItem(TOKEN_KEY) } catch (e) {}
    $('auth-why').textContent = token
      ? 'The token this page has was refused. Paste a valid one (mesh token create --read-only on the node).'
      : $('auth-why').textContent
    $('auth').hidden = false
    $('main').hidden = true
    setLive('err', 'needs a token')
    $('auth-token').focus()
  }

  function useToken () {
    needToken = false
    $('auth').hidden = true
    $('main').hidden = false
    for (var i = 0; i < pollers.length; i++) pollers[i].next = 0
    tick()
  }
  $('auth-form').addEventListener('submit', function (ev) {
    ev.preventDefault()
    var v = $('auth-token').value.trim()
    if (!v) return
    token = v
    try { sessionStorage.setItem(TOKEN_KEY, v) } catch (e) {}
    $('auth-token').value = ''
    useToken()
  })
  // Pasting a #token=... address into a tab that already shows the page changes only the fragment.
  window.addEventListener('hashchange', function () { if (tokenFromHash()) useToken() })

  function setLive (cls, text) {
    $('live').className = cls
    $('live-text').textContent = text
  }

  // ------------------------------------------------------------------------------------------------------ renderers

  function renderStatus (s) {
    self = s.peerId
    $('node-title').textContent = '· ' + shortId(s.peerId)
    document.title = 'meshos · ' + shortId(s.peerId)
    fill('node', h('dl', { class: 'kv' },
      h('dt', { text: 'peer id' }), h('dd', { class: 'mono', text: s.peerId }),
      h('dt', { text: 'version' }), h('dd', { text: s.version }),
      h('dt', { text: 'uptime' }), h('dd', { text: duration(s.uptimeMs) }),
      h('dt', { text: 'connections' }), h('dd', { text: num(s.connections) }),
      h('dt', { text: 'addresses' }), h('dd', null, (s.addrs || []).map(function (a) { return h('div', { class: 'mono', text: a }) }))
    ))
  }

  var order = { alive: 0, suspect: 1, dead: 2, left: 3 }
  function renderMembers (r) {
    members = (r.members || []).slice().sort(function (a, b) {
      return (b.self ? 1 : 0) - (a.self ? 1 : 0) || (order[a.state] - order[b.state]) || (a.peerId < b.peerId ? -1 : 1)
    })
    var counts = { alive: 0, suspect: 0, dead: 0, left: 0 }
    members.forEach(function (x) { counts[x.state] = (counts[x.state] || 0) + 1 })
    $('members-sub').textContent = members.length + ' known, as this node sees them'
    var now = Date.now() + clockOffset
    var rows = members.map(function (x) {
      var tags = x.meta && x.meta.tags ? Object.keys(x.meta.tags).map(function (k) { return k + '=' + x.meta.tags[k] }).join(', ') : ''
      return h('tr', { class: x.self ? 'self' : null, 'data-peer': x.peerId, 'data-state': x.state },
        td(badge(x.state)),
        td([peer(x.peerId), x.self ? h('span', { class: 'you', text: 'THIS NODE' }) : null]),
        td((x.addrs && x.addrs[0]) || '-', 'mono'),
        td(num(x.incarnation), 'num'),
        td(tags || '-'),
        td(duration(now - Date.parse(x.stateSince)), 'num'))
    })
    fill('members',
      h('div', { class: 'chips' }, ['alive', 'suspect', 'dead', 'left'].map(function (s) {
        return h('span', { class: 'chip ' + s }, h('b', { text: counts[s] }), s)
      })),
      table(['state', 'peer id', 'address', 'incarnation', 'tags', 'in state'], rows, [0, 0, 0, 1, 0, 1]))
  }

  function stateOf (id) {
    for (var i = 0; i < members.length; i++) if (members[i].peerId === id) return members[i].state
    return 'unknown'
  }

  // Known figures from GET /v1/cluster, in this order; any others are shown after them.
  var figures = [
    ['ringShare', 'ring share', 'share'], ['replicaShare', 'replica share', 'share'],
    ['records', 'records', 'count'], ['dataBytes', 'data', 'bytes'],
    ['filesBytes', 'file blocks', 'bytes'], ['pins', 'pinned files', 'count'],
    ['hintsPending', 'hints pending', 'number'],
    ['tasksRunning', 'tasks running', 'number'], ['tasksQueued', 'tasks queued', 'number']
  ]
  function renderCluster (r) {
    var rows = (r.members || []).slice().sort(function (a, b) {
      return (b.self ? 1 : 0) - (a.self ? 1 : 0) || ((order[a.state] || 0) - (order[b.state] || 0)) || (a.peerId < b.peerId ? -1 : 1)
    })
    var keys = figures.filter(function (f) { return rows.some(function (x) { return x.stats && x.stats[f[0]] != null }) })
    var extra = {}
    rows.forEach(function (x) { for (var k in (x.stats || {})) if (!figures.some(function (f) { return f[0] === k })) extra[k] = true })
    Object.keys(extra).sort().forEach(function (k) { keys.push([k, words(k), /Bytes$/.test(k) ? 'bytes' : /Share$/.test(k) ? 'share' : 'number']) })
    var live = rows.filter(function (x) { return x.stats })
    var max = {}
    keys.forEach(function (k) { max[k[0]] = Math.max.apply(null, [0].concat(live.map(function (x) { return x.stats[k[0]] || 0 }))) })
    var body = rows.map(function (x) {
      var cells = [td(badge(x.state)), td([peer(x.peerId), x.self ? h('span', { class: 'you', text: 'THIS NODE' }) : null]),
        td(x.version || '-'), td(x.uptimeMs != null ? duration(x.uptimeMs) : '-', 'num')]
      keys.forEach(function (k) {
        var v = x.stats ? x.stats[k[0]] : undefined
        if (v == null) { cells.push(td(x.error ? h('span', { class: 'note', title: x.error, text: 'no answer' }) : '-', k[2] === 'number' ? 'num' : null)); return }
        if (k[2] === 'share') cells.push(td(bar(v, pct(v))))
        else if (k[2] === 'bytes') cells.push(td(bar(max[k[0]] > 0 ? v / max[k[0]] : 0, bytes(v))))
        else if (k[2] === 'count') cells.push(td(bar(max[k[0]] > 0 ? v / max[k[0]] : 0, num(v))))
        else cells.push(td(num(v), 'num' + (k[0] === 'hintsPending' && v > 0 ? ' warn' : '')))
      })
      return h('tr', { 'data-peer': x.peerId, 'data-state': x.state }, cells)
    })
    var headers = ['state', 'peer id', 'version', 'uptime'].concat(keys.map(function (k) { return k[1] }))
    var numeric = [0, 0, 0, 1].concat(keys.map(function (k) { return k[2] === 'number' ? 1 : 0 }))
    fill('cluster',
      keys.length === 0 ? note('No member reports storage or task figures yet.') : null,
      table(headers, body, numeric),
      keys.some(function (k) { return k[2] !== 'number' }) ? note('Bars: ring share as a fraction of the whole ring; other figures relative to the largest member. Dead members keep their ring share for a grace period before their ranges move.') : null)
  }

  function renderStorage (s) {
    var ae = s.antiEntropy || {}
    fill('storage', h('dl', { class: 'kv' },
      h('dt', { text: 'records' }), h('dd', { text: num(s.records) + (s.tombstones ? ' (' + num(s.tombstones) + ' tombstones)' : '') }),
      h('dt', { text: 'data' }), h('dd', { text: bytes(s.bytes) }),
      h('dt', { text: 'ring share' }), h('dd', null, s.ringShare != null ? bar(s.ringShare, pct(s.ringShare) + ' of the token ring') : '-'),
      h('dt', { text: 'replica share' }), h('dd', null, s.replicaShare != null ? bar(s.replicaShare, pct(s.replicaShare) + ' of keys have a replica here') : '-'),
      h('dt', { text: 'hints pending' }), h('dd', { class: s.hintsPending > 0 ? 'warn' : null, text: num(s.hintsPending) }),
      h('dt', { text: 'anti-entropy' }), h('dd', { text: num(ae.completeRounds) + ' rounds done, ' + num(ae.failedRounds) + ' failed; ' + num(ae.pulled) + ' pulled, ' + num(ae.pushed) + ' pushed' })
    ))
  }

  function renderTasks (r) {
    // The tasks API has not settled: show the first list in the answer as a table, and any top-level numbers.
    var list = null, listName = ''
    for (var k in r) if (Array.isArray(r[k])) { list = r[k]; listName = k; break }
    var scalars = Object.keys(r).filter(function (k) { return typeof r[k] === 'number' || typeof r[k] === 'string' })
    var parts = []
    if (scalars.length) parts.push(h('dl', { class: 'kv' }, scalars.map(function (k) { return [h('dt', { text: k }), h('dd', { text: String(r[k]) })] })))
    if (list) {
      if (list.length === 0) parts.push(note('No ' + listName + '.'))
      else {
        var cols = []
        list.slice(0, 50).forEach(function (x) { for (var c in x) if (cols.indexOf(c) < 0 && cols.length < 8) cols.push(c) })
        parts.push(table(cols, list.slice(0, 50).map(function (x) {
          return h('tr', null, cols.map(function (c) {
            var v = x[c]
            if (c === 'state' || c === 'status') return td(h('span', { class: 'badge', text: String(v) }))
            if (typeof v === 'string' && /^12D3Koo|^Qm/.test(v)) return td(peer(v))
            return td(v == null ? '-' : typeof v === 'object' ? JSON.stringify(v).slice(0, 80) : String(v), typeof v === 'number' ? 'num' : null)
          }))
        })))
        if (list.length > 50) parts.push(note('and ' + (list.length - 50) + ' more'))
      }
    }
    fill('tasks', parts.length ? parts : note('No tasks.'))
  }

  function renderFiles (r) {
    var files = r.files || []
    if (files.length === 0) { fill('files', note('No files are stored.')); return }
    fill('files', table(['name', 'cid', 'size', 'chunks', 'holders'], files.map(function (f) {
      var low = f.holders < f.replicas
      return h('tr', { 'data-cid': f.cid },
        td(f.name || h('span', { class: 'note', text: '(unnamed)' })),
        td(h('span', { class: 'mono', title: f.cid, text: shortId(f.cid) })),
        td(bytes(f.size), 'num'),
        td(num(f.chunks), 'num'),
        td(h('span', { class: low ? 'warn' : null, title: low ? 'fewer holders than its replication factor' : null, text: f.holders + ' / ' + f.replicas }), 'num'))
    }), [0, 0, 1, 1, 1]))
  }

  $('lookup-form').addEventListener('submit', function (ev) {
    ev.preventDefault()
    var key = $('lookup-key').value
    var out = $('lookup')
    api('/v1/storage/replicas?key=' + encodeURIComponent(key)).then(function (r) {
      out.replaceChildren(h('p', null, 'Replicas of ', h('span', { class: 'mono', text: JSON.stringify(r.key) }), ', in preference order:'),
        h('ol', null, (r.replicas || []).map(function (id) { return h('li', null, badge(stateOf(id)), ' ', peer(id), id === self ? h('span', { class: 'you', text: 'THIS NODE' }) : null) })))
    }, function (err) {
      out.replaceChildren(err instanceof NotAvailable ? note('Not available on this node.') : h('p', { class: 'error', text: String(err && err.message) }))
    })
  })

  // -------------------------------------------------------------------------------------------------------- polling

  // Membership and status every second; the others fan out over the mesh, so less often.
  var pollers = [
    { id: 'node', path: '/v1/status', every: 1000, render: renderStatus },
    { id: 'members', path: '/v1/members', every: 1000, render: renderMembers },
    { id: 'storage', path: '/v1/storage/stats', every: 2000, render: renderStorage },
    { id: 'cluster', path: '/v1/cluster', every: 2000, render: renderCluster },
    { id: 'tasks', path: '/v1/tasks', every: 2000, render: renderTasks },
    { id: 'files', path: '/v1/files', every: 5000, render: renderFiles }
  ]
  var lastOk = 0

  function run (p) {
    p.busy = true
    api(p.path).then(function (data) {
      p.missing = false
      p.render(data)
      if (p.id === 'node') { lastOk = Date.now(); setLive('ok', 'live') }
    }, function (err) {
      if (err instanceof NotAvailable) {
        p.missing = true
        if (p.id === 'storage') $('lookup-form').hidden = true
        fill(p.id, note('Not available on this node.'))
        return
      }
      if (err instanceof ApiError && err.status === 401) return
      $(p.id).classList.add('stale')
      if (p.id === 'node') setLive('err', 'cannot reach the node; retrying')
    }).then(function () {
      p.busy = false
      // A missing route does not appear until the node restarts with a newer version; look again now and then.
      p.next = Date.now() + (p.missing ? 15000 : document.hidden ? Math.max(p.every, 10000) : p.every)
    })
  }

  function tick () {
    if (!needToken) {
      var now = Date.now()
      for (var i = 0; i < pollers.length; i++) {
        var p = pollers[i]
        if (!p.busy && !(p.next > now)) run(p)
      }
      if (lastOk > 0 && now - lastOk > 5000) setLive('err', 'no answer for ' + duration(now - lastOk))
    }
  }
  setInterval(tick, 250)
  tick()
})()
</script>
</body>
</html>
`
