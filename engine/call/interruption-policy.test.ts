import { describe, expect, it } from 'vitest';
import { InterruptionPolicy } from './interruption-policy.ts';

describe('InterruptionPolicy', () => {
  it('interrupts as soon as real words arrive', () => {
    const policy = new InterruptionPolicy();
    expect(policy.speechStarted(0)).toBeNull();
    expect(policy.tick(200)).toBeNull();
    expect(policy.words('wait, I need')).toBe('interrupt');
    expect(policy.state).toBe('none');
  });

  it('pauses on long speech without words, then resumes when no words come (a cough, noise)', () => {
    const policy = new InterruptionPolicy({ minSpeechMs: 600, falseInterruptionTimeoutMs: 2000 });
    policy.speechStarted(1000);
    expect(policy.tick(1500)).toBeNull();
    expect(policy.tick(1600)).toBe('pause');
    expect(policy.speechEnded(1900)).toBeNull();
    expect(policy.tick(3800)).toBeNull();
    expect(policy.tick(3900)).toBe('resume');
    expect(policy.state).toBe('none');
  });

  it('ignores a short burst with no words', () => {
    const policy = new InterruptionPolicy({ minSpeechMs: 600 });
    policy.speechStarted(0);
    policy.speechEnded(300);
    expect(policy.tick(700)).toBeNull();
    expect(policy.tick(2400)).toBeNull();
    expect(policy.state).toBe('none');
  });

  it('never interrupts on backchannels, and resumes a paused bot on one', () => {
    const policy = new InterruptionPolicy({ minSpeechMs: 300 });
    policy.speechStarted(0);
    expect(policy.words('Okay.')).toBeNull();
    policy.speechEnded(400);
    expect(policy.tick(500)).toBeNull();

    policy.speechStarted(5000);
    expect(policy.tick(5400)).toBe('pause');
    expect(policy.words('uh-huh yeah')).toBe('resume');
    expect(policy.words('mm-hmm')).toBeNull();
  });

  it('interrupts on words that arrive after the speech ended, within the timeout', () => {
    const policy = new InterruptionPolicy({ minSpeechMs: 600 });
    policy.speechStarted(0);
    expect(policy.tick(650)).toBe('pause');
    policy.speechEnded(900);
    expect(policy.words('no, the other address')).toBe('interrupt');
  });

  it('waits for the configured number of words', () => {
    const policy = new InterruptionPolicy({ minWords: 2 });
    policy.speechStarted(0);
    expect(policy.words('stop')).toBeNull();
    expect(policy.words('okay stop')).toBeNull();
    expect(policy.words('stop please')).toBe('interrupt');
  });

  it('knows backchannels regardless of case and punctuation', () => {
    const policy = new InterruptionPolicy();
    expect(policy.isBackchannel('OK!')).toBe(true);
    expect(policy.isBackchannel('Got it.')).toBe(true);
    expect(policy.isBackchannel('okay but where')).toBe(false);
  });
});
