// HS256 JSON Web Tokens for the default auth policy, as tests/src/token.rs mints them.
import { createHmac } from 'node:crypto';

export const JWT_SECRET = 'switchboard-js-tests-secret-not-for-production';

const base64url = (text: string): string => Buffer.from(text).toString('base64url');

export function token(sub: string, claims: Record<string, unknown> = {}): string {
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = base64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600, ...claims }));
  const signature = createHmac('sha256', JWT_SECRET).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${signature}`;
}

/** A getToken that mints a new token on every call and remembers what it gave. */
export function tokenSource(sub: string): { getToken: () => string; issued: string[] } {
  const issued: string[] = [];
  return {
    issued,
    getToken: () => {
      // `jti` makes each token unique even within one second.
      const fresh = token(sub, { jti: `${sub}-${String(issued.length)}` });
      issued.push(fresh);
      return fresh;
    },
  };
}
