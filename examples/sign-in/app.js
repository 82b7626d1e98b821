// The sign-in page: supabase-js (window.supabase, the UMD bundle) against Latchkey in PKCE mode.
// A button calls signInWithOAuth, which sends the browser to Latchkey's /authorize; the
// provider sends it back through Latchkey's /callback to this page with `?code=`, and
// supabase-js (detectSessionInUrl) exchanges the code for a session while it initializes.

const { url, anonKey } = window.LATCHKEY_CONFIG;
const client = window.supabase.createClient(url, anonKey, {
  auth: { flowType: 'pkce', detectSessionInUrl: true, persistSession: true, autoRefreshToken: true },
});

// The providers a button can sign in with, in the order shown, with their names. `/settings`
// also lists `email`, `phone` and `anonymous_users` (not OAuth) and `workos` (its sign-in needs
// a connection or organization the app chooses), which get no button.
const PROVIDER_NAMES = {
  apple: 'Apple', azure: 'Azure', bitbucket: 'Bitbucket', discord: 'Discord', facebook: 'Facebook',
  figma: 'Figma', fly: 'Fly', github: 'GitHub', gitlab: 'GitLab', google: 'Google', kakao: 'Kakao',
  keycloak: 'Keycloak', linkedin_oidc: 'LinkedIn', notion: 'Notion', slack_oidc: 'Slack',
  snapchat: 'Snapchat', spotify: 'Spotify', twitch: 'Twitch', x: 'X', zoom: 'Zoom',
};
const OTHER_NAMES = { email: 'Email', phone: 'Phone', workos: 'WorkOS' };
const byId = (id) => document.getElementById(id);
const providerName = (provider) => PROVIDER_NAMES[provider] ?? OTHER_NAMES[provider] ?? provider;

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

/** A "Sign in with <name>" button that starts the provider's sign-in. */
function providerButton(provider) {
  const button = document.createElement('button');
  button.type = 'button';
  button.dataset.provider = provider;
  button.textContent = `Sign in with ${providerName(provider)}`;
  button.addEventListener('click', async () => {
    showError('');
    button.disabled = true;
    // Back to this page; Latchkey only redirects to its site URL and allow list.
    const redirectTo = `${window.location.origin}${window.location.pathname}`;
    const { error } = await client.auth.signInWithOAuth({ provider, options: { redirectTo } });
    if (error) {
      showError(error.message);
      button.disabled = false;
    }
  });
  return button;
}

byId('sign-out').addEventListener('click', async () => {
  showError('');
  byId('sign-out').disabled = true;
  const { error } = await client.auth.signOut();
  if (error) showError(error.message);
});

// A button for each provider Latchkey has enabled (GET /settings lists them).
async function showEnabledProviders() {
  let external;
  try {
    const res = await fetch(`${url}/auth/v1/settings`, { headers: { apikey: anonKey } });
    if (!res.ok) throw new Error(`GET /settings answered ${res.status}`);
    ({ external } = await res.json());
  } catch (err) {
    showError(`Could not ask Latchkey which providers are enabled: ${err.message}`);
    return;
  }
  const enabled = Object.keys(PROVIDER_NAMES).filter((provider) => external?.[provider] === true);
  byId('providers').replaceChildren(...enabled.map(providerButton));
  byId('no-providers').hidden = enabled.length > 0;
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
