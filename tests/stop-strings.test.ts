import { describe, expect, it } from 'vitest';
import { StopStringMatcher } from '../src/engine/stop-strings';

/** Feed pieces; return everything emitted (plus flush when not stopped) and whether it stopped. */
function run(stops: string[], pieces: string[]) {
  const m = new StopStringMatcher(stops);
  const emitted: string[] = [];
  let stopped = false;
  let matched: string | undefined;
  for (const p of pieces) {
    const r = m.push(p);
    emitted.push(r.emit);
    if (r.stopped) {
      stopped = true;
      matched = r.matched;
      break;
    }
  }
  const tail = m.flush();
  return { emitted, text: emitted.join('') + tail, stopped, matched, tail };
}

describe('StopStringMatcher', () => {
  it('passes everything through with no stop strings', () => {
    const r = run([], ['a', 'b<', '|end', '|>']);
    expect(r.emitted).toEqual(['a', 'b<', '|end', '|>']);
    expect(r.stopped).toBe(false);
  });

  it('ignores empty stop strings', () => {
    const r = run([''], ['abc']);
    expect(r.emitted).toEqual(['abc']);
  });

  it('stops inside a single piece and drops the rest', () => {
    const r = run(['STOP'], ['hello STOP world']);
    expect(r).toMatchObject({ text: 'hello ', stopped: true, matched: 'STOP' });
  });

  it('detects a stop string split across token boundaries', () => {
    const r = run(['\nUser:'], ['Hi', ' there', '\n', 'Us', 'er', ':', ' more']);
    expect(r.stopped).toBe(true);
    expect(r.text).toBe('Hi there');
    // The newline and "Us"/"er" were held back, never shown.
    expect(r.emitted).toEqual(['Hi', ' there', '', '', '', '']);
  });

  it('holds a partial prefix back and releases it when the match fails', () => {
    const m = new StopStringMatcher(['<|end|>']);
    expect(m.push('a<')).toEqual({ emit: 'a', stopped: false });
    expect(m.push('|en')).toEqual({ emit: '', stopped: false });
    expect(m.push('x')).toEqual({ emit: '<|enx', stopped: false });
    expect(m.push('<|')).toEqual({ emit: '', stopped: false });
    expect(m.flush()).toBe('<|');
  });

  it('re-anchors on a later prefix inside released text', () => {
    const m = new StopStringMatcher(['abab']);
    expect(m.push('aba')).toEqual({ emit: '', stopped: false });
    // "abaa": the tail "a" can still start "abab".
    expect(m.push('a')).toEqual({ emit: 'aba', stopped: false });
    expect(m.push('bab')).toEqual({ emit: '', stopped: true, matched: 'abab' });
  });

  it('with several stop strings, the earliest occurrence wins', () => {
    const r = run(['world', 'lo w'], ['hel', 'lo world']);
    expect(r).toMatchObject({ text: 'hel', stopped: true, matched: 'lo w' });
    const r2 = run(['###', '\n\n'], ['one\n', 'two\n', '\nthree ###']);
    expect(r2).toMatchObject({ text: 'one\ntwo', stopped: true, matched: '\n\n' });
  });

  it('holds the longest possible prefix among several stop strings', () => {
    const m = new StopStringMatcher(['xyz', 'yzzz']);
    expect(m.push('ayz')).toEqual({ emit: 'a', stopped: false });
    expect(m.push('z')).toEqual({ emit: '', stopped: false });
    expect(m.push('q')).toEqual({ emit: 'yzzq', stopped: false });
  });

  it('emits nothing after a match and flush returns nothing', () => {
    const m = new StopStringMatcher(['.']);
    expect(m.push('end. after').emit).toBe('end');
    expect(m.stopped).toBe(true);
    expect(m.push('more')).toEqual({ emit: '', stopped: true });
    expect(m.flush()).toBe('');
  });

  it('keeps the concatenation of emits plus flush equal to the input when nothing matches', () => {
    const pieces = ['The', ' <', '/s', ' and', ' </', 's', ' done <'];
    const r = run(['</s>'], pieces);
    expect(r.stopped).toBe(false);
    expect(r.text).toBe(pieces.join(''));
    expect(r.tail).toBe('<');
  });
});
