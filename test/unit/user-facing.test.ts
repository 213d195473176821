/**
 * Issue 9, what users see: the examples take records in both input formats, a finite source's
 * windows drain, dead letters are counted once by one rule, the receive window is apart from
 * processing, setup errors are usage errors, and small things (interval floor, .ts errors).
 */
import { describe, expect, it } from 'vitest';
import * as joinStatic from '../../examples/join-static.ts';
import * as pageviews from '../../examples/pageviews.ts';
import * as sessions from '../../examples/sessions.ts';
import { runPipeline } from '../../shared/index.ts';

describe('examples with --format json (records already parsed)', () => {
  it('pageviews, sessions and join-static take a parsed event as they take a JSON line', () => {
    const view = { url: '/a', user: 'u1', ts: 1 };
    expect(pageviews.parseView(view)).toEqual([view]);
    expect(pageviews.parseView(JSON.stringify(view))).toEqual([view]);
    expect(pageviews.parseView('{"url":')).toEqual([]);
    expect(pageviews.parseView(['/a'])).toEqual([]);
    expect(sessions.parseEvent({ user: 'u1', page: '/p' })).toEqual([['u1', '/p']]);
    expect(sessions.parseEvent('{"user":"u1","page":"/p"}')).toEqual([['u1', '/p']]);
    expect(joinStatic.parseClick({ url: '/a' })).toEqual([['/a', 1]]);
    expect(joinStatic.parseClick('{"url":"/a"}')).toEqual([['/a', 1]]);
  });

  it('pageviews counts parsed events in its window', async () => {
    const input = [[{ url: '/a' }, { url: '/b' }, { url: '/a' }], []];
    const { store } = await runPipeline(pageviews.default, { input }, { ...pageviews.options, numBatches: 2 });
    const keys = (await store.list('outputs/pageviews-2000.jsonl/')).filter((k) => k.endsWith('.jsonl'));
    const pairs: [string, number][] = [];
    for (const k of keys)
      for (const line of Buffer.from((await store.get(k))!).toString('utf8').split('\n'))
        if (line) pairs.push(JSON.parse(line) as [string, number]);
    expect(pairs.sort()).toEqual([
      ['/a', 2],
      ['/b', 1],
    ]);
  });
});
