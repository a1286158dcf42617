/**
 * Counters the control plane keeps for `/metrics`, rendered in the Prometheus text exposition format.
 * Hand-written on purpose: a handful of counters and one histogram do not justify a client library.
 */

/** Upper bounds of the request-duration histogram, in seconds (Prometheus convention). */
export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"');
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

/** Prometheus metric names allow `[a-zA-Z_:][a-zA-Z0-9_:]*`; engine metric keys are free-form. */
export function metricName(raw: string): string {
  const cleaned = raw.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[a-zA-Z_:]/.test(cleaned) ? cleaned : `_${cleaned}`;
}

class LabelledCounter {
  readonly #values = new Map<string, { labels: Labels; value: number }>();

  inc(labels: Labels, by = 1): void {
    const key = JSON.stringify(labels);
    const entry = this.#values.get(key);
    if (entry === undefined) this.#values.set(key, { labels, value: by });
    else entry.value += by;
  }

  get(labels: Labels): number {
    return this.#values.get(JSON.stringify(labels))?.value ?? 0;
  }

  entries(): Iterable<{ labels: Labels; value: number }> {
    return this.#values.values();
  }
}

export class ApiMetrics {
  readonly httpRequests = new LabelledCounter();
  readonly callsCreated = new LabelledCounter();
  readonly webhooks = new LabelledCounter();
  readonly engineEvents = new LabelledCounter();
  readonly #durationCounts = new Array<number>(DURATION_BUCKETS_S.length).fill(0);
  #durationSumS = 0;
  #durationCount = 0;

  observeRequest(method: string, route: string, status: number, durationS: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    for (let i = 0; i < DURATION_BUCKETS_S.length; i++) if (durationS <= DURATION_BUCKETS_S[i]) this.#durationCounts[i]++;
    this.#durationSumS += durationS;
    this.#durationCount++;
  }

  /** The exposition text; `gauges` are point-in-time values gathered by the caller (engine, outbox...). */
  render(gauges: { name: string; help: string; value: number; labels?: Labels }[]): string {
    const out: string[] = [];
    const counter = (name: string, help: string, c: LabelledCounter): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const { labels, value } of c.entries()) out.push(`${name}${labelText(labels)} ${value}`);
    };
    counter('ve_http_requests_total', 'HTTP requests answered, by method, route template and status.', this.httpRequests);
    counter('ve_calls_created_total', 'POST /v1/calls outcomes.', this.callsCreated);
    counter('ve_webhooks_total', 'LiveKit webhooks received, by result.', this.webhooks);
    counter('ve_engine_events_total', 'Engine events received, by type.', this.engineEvents);

    out.push('# HELP ve_http_request_duration_seconds HTTP request duration.', '# TYPE ve_http_request_duration_seconds histogram');
    DURATION_BUCKETS_S.forEach((le, i) => out.push(`ve_http_request_duration_seconds_bucket{le="${le}"} ${this.#durationCounts[i]}`));
    out.push(`ve_http_request_duration_seconds_bucket{le="+Inf"} ${this.#durationCount}`);
    out.push(`ve_http_request_duration_seconds_sum ${this.#durationSumS}`);
    out.push(`ve_http_request_duration_seconds_count ${this.#durationCount}`);

    const seen = new Set<string>();
    for (const g of gauges) {
      const name = metricName(g.name);
      if (!seen.has(name)) {
        out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
        seen.add(name);
      }
      out.push(`${name}${labelText(g.labels ?? {})} ${Number.isFinite(g.value) ? g.value : 'NaN'}`);
    }
    return `${out.join('\n')}\n`;
  }
}
