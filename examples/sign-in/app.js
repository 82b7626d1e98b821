// The sign-in page: supabase-js (window.supabase, the UMD bundle) against Latchkey in PKCE mode.
// A button calls signInWithOAuth, which sends the browser to Latchkey's /authorize; the
// provider sends it back through Latchkey's /callback to this page with `?code=`, and
// supabase-js (detectSessionInUrl) exchanges the code for a session while it initializes.

const { url, anonKey } = window.LATCHKEY_CONFIG;
const client = window.supabase.createClient(url, anonKey, {
  auth: { flowType: 'pkce', detectSessionInUrl: true, persistSession: true, autoRefreshToken: true },
});

const PROVIDER_NAMES = { google: 'Google', github: 'GitHub', email: 'Email' };
const byId = (id) => document.getElementById(id);
const providerName = (provider) => PROVIDER_NAMES[provider] ?? provider;

function showError(message) {
  byId('error').textContent = message;
  byId('error').hidden = !message;
}

function show(session) {
  byId('loading').hidden = true;
  byId('signed-out').hidden = Boolean(session);
  byId('signed-in').hidden = !session;
  for (const button of document.querySelectorAll('button')) button.disabled = false;
  if (!session) return;
  const { user } = session;
  byId('user-email').textContent = user.email || '(none)';
  byId('user-name').textContent = user.user_metadata?.full_name || '(none)';
  byId('user-provider').textContent = providerName(user.app_metadata?.provider);
  byId('user-identities').textContent = (user.identities ?? []).map((i) => providerName(i.provider)).join(', ');
}

for (const button of document.querySelectorAll('button[data-provider]')) {
  button.addEventListener('click', async () => {
    showError('');
    button.disabled = true;
    // Back to this page; Latchkey only redirects to its site URL and allow list.
    const redirectTo = `${window.location.origin}${window.location.pathname}`;
    const { error } = await client.auth.signInWithOAuth({ provider: button.dataset.provider, options: { redirectTo } });
    if (error) {
      showError(error.message);
      button.disabled = false;
    }
  });
}

byId('sign-out').addEventListener('click', async () => {
  showError('');
  byId('sign-out').disabled = true;
  const { error } = await client.auth.signOut();
  if (error) showError(error.message);
});

// Only the providers Latchkey has enabled get a button (GET /settings lists them).
async function showEnabledProviders() {
  const buttons = [...document.querySelectorAll('button[data-provider]')];
  let enabled = () => true;
  try {
    const res = await fetch(`${url}/auth/v1/settings`, { headers: { apikey: anonKey } });
    if (!res.ok) throw new Error(`GET /settings: ${res.status}`);
    const { external } = await res.json();
    enabled = (provider) => Boolean(external?.[provider]);
  } catch {
    // Unreachable or unexpected: show every button; a click will say what is wrong.
  }
  for (const button of buttons) button.hidden = !enabled(button.dataset.provider);
  byId('no-providers').hidden = buttons.some((button) => !button.hidden);
}

// INITIAL_SESSION, SIGNED_IN, SIGNED_OUT, TOKEN_REFRESHED ...: redraw from the session.
client.auth.onAuthStateChange((_event, session) => show(session));

// Errors come back in the URL (a declined consent, an unverified email, a used code ...).
const [{ error }] = await Promise.all([client.auth.initialize(), showEnabledProviders()]);
if (error) {
  // Latchkey's own errors carry an error_code; a provider's only its OAuth `error`.
  const code = [error.details?.code, error.details?.error, error.code].find((c) => c && !c.startsWith('unspecified'));
  showError(code ? `${error.message} (${code})` : error.message);
  window.history.replaceState(window.history.state, '', window.location.pathname);
}
