// Sign-in against the stack's Cognito user pool with SRP (the password never leaves the browser), through the
// console's app client: its tokens alone reach the console-only routes. Tokens live in sessionStorage (gone when the
// tab closes) and the ID token is refreshed with the refresh token when it nears expiry.
import { AuthenticationDetails, CognitoUser, CognitoUserPool } from 'amazon-cognito-identity-js';

let pool = null;

export function configure(config) {
  pool = new CognitoUserPool({
    UserPoolId: config.userPoolId,
    ClientId: config.clientId,
    endpoint: config.cognitoEndpoint,
    Storage: window.sessionStorage,
  });
}

function userOf(session) {
  const claims = session.getIdToken().decodePayload();
  const groups = claims['cognito:groups'] || [];
  return {
    email: claims.email || claims['cognito:username'],
    accountId: claims['custom:account_id'],
    role: groups.includes('admin') ? 'admin' : groups.includes('agent') ? 'agent' : null,
  };
}

// The signed-in user (with a fresh session), or null.
export function currentUser() {
  const cognitoUser = pool && pool.getCurrentUser();
  if (!cognitoUser) return Promise.resolve(null);
  return new Promise((resolve) => {
    cognitoUser.getSession((error, session) => resolve(error || !session || !session.isValid() ? null : userOf(session)));
  });
}

// The ID token to send to the tenant API; refreshed first when it expires within a minute.
export function idToken() {
  const cognitoUser = pool && pool.getCurrentUser();
  if (!cognitoUser) return Promise.reject(new SignedOut());
  return new Promise((resolve, reject) => {
    cognitoUser.getSession((error, session) => {
      if (error || !session) return reject(new SignedOut());
      const token = session.getIdToken();
      if (token.getExpiration() * 1000 - Date.now() > 60000) return resolve(token.getJwtToken());
      cognitoUser.refreshSession(session.getRefreshToken(), (refreshError, fresh) => {
        if (refreshError || !fresh) return reject(new SignedOut());
        resolve(fresh.getIdToken().getJwtToken());
      });
    });
  });
}

export class SignedOut extends Error {
  constructor() {
    super('Your sign-in has ended. Sign in again.');
  }
}

// Resolves with {user} when signed in, or {newPasswordRequired: complete(newPassword)} on a first sign-in with
// the temporary password of an invitation; rejects with a message in words.
export function signIn(email, password) {
  const cognitoUser = new CognitoUser({ Username: email.trim(), Pool: pool, Storage: window.sessionStorage });
  cognitoUser.setAuthenticationFlowType('USER_SRP_AUTH');
  const details = new AuthenticationDetails({ Username: email.trim(), Password: password });
  return new Promise((resolve, reject) => {
    const callbacks = {
      onSuccess: (session) => resolve({ user: userOf(session) }),
      onFailure: (error) => reject(new Error(signInWords(error))),
      newPasswordRequired: () => resolve({
        newPasswordRequired: (newPassword) => new Promise((done, failed) => {
          cognitoUser.completeNewPasswordChallenge(newPassword, {}, {
            onSuccess: (session) => done({ user: userOf(session) }),
            onFailure: (error) => failed(new Error(signInWords(error))),
          });
        }),
      }),
      mfaRequired: () => reject(new Error('This user signs in with a one-time code, which the console does not ask for yet. Ask your operator.')),
      totpRequired: () => reject(new Error('This user signs in with a one-time code, which the console does not ask for yet. Ask your operator.')),
    };
    cognitoUser.authenticateUser(details, callbacks);
  });
}

export function signOut() {
  const cognitoUser = pool && pool.getCurrentUser();
  if (cognitoUser) cognitoUser.signOut();
}

function signInWords(error) {
  const code = error && (error.code || error.name);
  switch (code) {
    case 'NotAuthorizedException':
      return /expired|session/i.test(error.message || '')
        ? 'The sign-in took too long. Try again.'
        : 'The email address or the password is wrong.';
    case 'UserNotFoundException':
      return 'The email address or the password is wrong.';
    case 'PasswordResetRequiredException':
      return 'Your password must be reset. Ask an admin of your account or your operator.';
    case 'UserNotConfirmedException':
      return 'This user is not confirmed yet. Ask an admin of your account.';
    case 'InvalidPasswordException':
      return 'That password is not allowed: use at least 12 characters with upper- and lower-case letters and digits.';
    case 'TooManyRequestsException':
    case 'LimitExceededException':
      return 'Too many attempts. Wait a minute, then try again.';
    case 'NetworkError':
      return 'The sign-in service could not be reached. Check your connection and try again.';
    default:
      return `The sign-in failed: ${(error && error.message) || 'unknown error'}.`;
  }
}
