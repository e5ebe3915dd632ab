// Applies the chosen theme before the first paint, so a dark console never flashes white.
// A file of its own, not an inline script: the server's Content-Security-Policy allows
// scripts from the console's own origin only.
try {
  var theme = localStorage.getItem('upshift.theme');
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
} catch {
  // no storage (a private window, blocked cookies): the default theme
}
