/**
 * The loopback-only LiveKit configuration and the start-up guards. Starting and stopping a real server
 * is covered by every end-to-end test (test/support/livekit-server.ts uses this module).
 */
import { describe, expect, it } from 'vitest';
import { LocalLiveKitError, MIN_SECRET_LENGTH, UNREACHABLE_STUN, ensureLiveKitBinary, localLiveKitConfig, startLocalLiveKit } from './local-livekit.ts';

describe('local LiveKit configuration', () => {
  it('binds, advertises and hands out loopback addresses only', () => {
    const config = localLiveKitConfig(7880, 'devkey', 's'.repeat(40)) as Record<string, any>;
    expect(config.bind_addresses).toEqual(['127.0.0.1']);
    expect(config.rtc).toMatchObject({ node_ip: '127.0.0.1', use_external_ip: false, enable_loopback_candidate: true, tcp_port: 0 });
    expect(config.rtc.ips.includes).toEqual(['127.0.0.1/32']);
    // Left empty, LiveKit hands clients public STUN servers.
    expect(config.rtc.stun_servers).toEqual([UNREACHABLE_STUN]);
    expect(UNREACHABLE_STUN.startsWith('127.0.0.1:')).toBe(true);
    expect(config.keys).toEqual({ devkey: 's'.repeat(40) });
    expect(config.webhook).toBeUndefined();
    expect(config.redis).toBeUndefined();
  });

  it('dispatches to agent workers up to the load they report as full (target_load 1, not 0.7)', () => {
    const config = localLiveKitConfig(7880, 'devkey', 's'.repeat(40)) as Record<string, any>;
    expect(config.agents).toEqual({ target_load: 1 });
  });

  it('signs webhooks with its key and joins a Redis when asked', () => {
    const config = localLiveKitConfig(7880, 'k', 's'.repeat(40), { webhookUrls: ['http://127.0.0.1:8080/v1/livekit/webhook'], redisAddress: '127.0.0.1:6379' }) as Record<string, any>;
    expect(config.webhook).toEqual({ api_key: 'k', urls: ['http://127.0.0.1:8080/v1/livekit/webhook'] });
    expect(config.redis).toEqual({ address: '127.0.0.1:6379' });
  });
});

describe('start-up guards', () => {
  it('refuses a missing binary and a short secret with a typed error', async () => {
    await expect(startLocalLiveKit({ binaryPath: '/nonexistent/livekit-server' })).rejects.toMatchObject({ code: 'VE_LOCAL_LIVEKIT_FAILED' });
    const short = startLocalLiveKit({ binaryPath: '/nonexistent/livekit-server', apiSecret: 'x'.repeat(MIN_SECRET_LENGTH - 1) });
    await expect(short).rejects.toBeInstanceOf(LocalLiveKitError);
  });

  it('does not rebuild a binary that is there', async () => {
    const lines: string[] = [];
    expect(await ensureLiveKitBinary((line) => lines.push(line), process.execPath)).toBe(process.execPath);
    expect(lines).toEqual([]);
  });
});
