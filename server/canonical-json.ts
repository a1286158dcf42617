/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` written as `null`. Two bodies that differ
 * only in key order have the same canonical form, so a request fingerprint does not depend on it.
 * Iterative, so a value nested thousands of levels deep costs memory, not the call stack.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  // A stack of things still to write: raw text, or a value to expand. Pushed in reverse, popped in order.
  const pending: ({ text: string } | { value: unknown })[] = [{ value }];
  while (pending.length > 0) {
    const item = pending.pop()!;
    if ('text' in item) {
      out.push(item.text);
      continue;
    }
    const v = item.value;
    if (v === null || typeof v !== 'object') {
      out.push(JSON.stringify(v) ?? 'null');
      continue;
    }
    const parts: ({ text: string } | { value: unknown })[] = [];
    if (Array.isArray(v)) {
      parts.push({ text: '[' });
      v.forEach((element, i) => parts.push(...(i > 0 ? [{ text: ',' }] : []), { value: element }));
      parts.push({ text: ']' });
    } else {
      parts.push({ text: '{' });
      const entries = Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      entries.forEach(([key, element], i) => parts.push({ text: `${i > 0 ? ',' : ''}${JSON.stringify(key)}:` }, { value: element }));
      parts.push({ text: '}' });
    }
    for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]);
  }
  return out.join('');
}
