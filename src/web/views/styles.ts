/** The page's only stylesheet, embedded (the app ships as one file) and served from /assets/app.css */
export const STYLES = `
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --bg:#f5f7fa; --card:#fff; --accent:#2f6f9f;
  --ok:#1f7a4d; --ok-bg:#e3f6ec; --warn:#8a5a00; --warn-bg:#fff4d6; --bad:#a12b2b; --bad-bg:#fde8e8; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink); background:var(--bg); }
header { background:#243b53; color:#fff; }
header .bar { max-width:1280px; margin:0 auto; padding:.7rem 1.2rem; display:flex; align-items:center; gap:1rem; flex-wrap:wrap; }
header .brand { font-weight:600; font-size:1.1rem; letter-spacing:.01em; display:flex; flex-direction:column; line-height:1.25; }
header .host { color:#bcccdc; font-size:.8rem; font-weight:400; }
nav { display:flex; gap:.2rem; flex-wrap:wrap; flex:1; }
nav a { color:#d9e2ec; text-decoration:none; padding:.35rem .6rem; border-radius:6px; white-space:nowrap; }
nav a:hover { background:#334e68; }
nav a.active { background:#fff; color:#243b53; }
header form { margin:0; }
header button { background:transparent; color:#d9e2ec; border:1px solid #486581; }
main { max-width:1280px; margin:0 auto; padding:1.2rem; }
h1 { font-size:1.45rem; margin:.2rem 0 1rem; font-weight:600; }
h2 { font-size:1.1rem; margin:0 0 .6rem; font-weight:600; }
p.lead { color:var(--muted); margin-top:-.6rem; }
.grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(240px,1fr)); gap:1rem; margin-bottom:1rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:1rem 1.1rem; margin-bottom:1rem; }
.grid .card { margin-bottom:0; }
.big { font-size:1.9rem; font-weight:600; line-height:1.2; }
.muted { color:var(--muted); }
.when, .nowrap { white-space:nowrap; }
.small { font-size:.85rem; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.25rem 1rem; margin:0; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; word-break:break-word; }
table { width:100%; border-collapse:collapse; background:var(--card); }
th, td { text-align:left; padding:.45rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:.85rem; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
/* Addresses and reply texts may break anywhere, so a long one narrows its column instead of pushing the buttons out */
td.addr, td.detail { overflow-wrap:anywhere; }
td.detail { min-width:12rem; }
.stacked { display:flex; flex-direction:column; gap:.3rem; align-items:stretch; }
.table-wrap { overflow-x:auto; border:1px solid var(--line); border-radius:10px; background:var(--card); margin-bottom:1rem; }
.table-wrap table { border:0; }
.pill { display:inline-block; padding:.05rem .55rem; border-radius:999px; font-size:.8rem; font-weight:600; background:#e4e7eb; color:#3e4c59; white-space:nowrap; }
.pill.ok { background:var(--ok-bg); color:var(--ok); }
.pill.warn { background:var(--warn-bg); color:var(--warn); }
.pill.bad { background:var(--bad-bg); color:var(--bad); }
.notice { padding:.7rem 1rem; border-radius:8px; margin-bottom:1rem; border:1px solid; }
.notice.ok { background:var(--ok-bg); color:var(--ok); border-color:#b7e4c7; }
.notice.error { background:var(--bad-bg); color:var(--bad); border-color:#f5c2c2; }
.notice.warn { background:var(--warn-bg); color:var(--warn); border-color:#f3d98b; }
form.stack label { display:block; font-weight:600; margin:.8rem 0 .2rem; }
form.stack .hint { font-weight:400; color:var(--muted); font-size:.85rem; }
input.name { min-width:11rem; }
input[type=text], input[type=password], input[type=number], input[type=email], select, textarea {
  font:inherit; padding:.4rem .55rem; border:1px solid #bcccdc; border-radius:6px; width:100%; max-width:32rem; background:#fff; }
textarea { min-height:5.5rem; font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:.9rem; }
.field-error { color:var(--bad); font-size:.88rem; margin-top:.2rem; }
.has-error input, .has-error textarea, .has-error select { border-color:var(--bad); }
button { font:inherit; padding:.4rem .9rem; border-radius:6px; border:1px solid #9fb3c8; background:#fff; color:var(--ink); cursor:pointer; }
button.primary { background:var(--accent); border-color:var(--accent); color:#fff; }
button.danger { color:var(--bad); border-color:#e6a5a5; }
button.small { padding:.15rem .5rem; font-size:.82rem; }
.actions { display:flex; gap:.4rem; flex-wrap:wrap; align-items:center; margin:.6rem 0; }
.inline { display:inline; }
pre { background:#f0f4f8; padding:.8rem; border-radius:8px; overflow-x:auto; white-space:pre-wrap; word-break:break-all; font-size:.85rem; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:.9em; white-space:nowrap; }
/* A path may wrap after a slash, never inside a name (see pathCode) */
code.path { white-space:normal; }
code.path span { white-space:nowrap; }
.login { max-width:32rem; margin:3rem auto; }
fieldset { border:1px solid var(--line); border-radius:8px; padding:.4rem 1rem 1rem; margin:0 0 1rem; }
legend { font-weight:600; padding:0 .3rem; }
footer { max-width:1280px; margin:0 auto; padding:0 1.2rem 2rem; color:var(--muted); font-size:.82rem; }
`;
