import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'dotenv';
import { scanDotenvLines } from '../../src/import/dotenv-lines.js';

/** .env texts with dotenv's odd cases: quotes over several lines, `export`, `NAME: value`, comments, stray text. */
const texts = [
  'A=1\nB=two words\n',
  '# comment\n\n  export C="quoted # not a comment"\nD=\'single\'\nE=`back`\n',
  'MULTI="first\nsecond\nthird"\nAFTER=x\n',
  'COLON: value\nNOSPACE:value\nSPACED = spaced \n',
  'junk line\nexport LONELY\n=no-name\nGOOD=1\n',
  'EMPTY=\nQUOTE_NEXT=\n\'next line\'\n',
  'CRLF=1\r\nCR=2\rLAST=3',
  'dotted.name=1\ndashed-name=2\n__proto__=p\nconstructor=c\nprototype=q\n',
  'INLINE=value # comment\nHASH=#not-a-value\n',
  'UNCLOSED="never closed\nNEXT=1\n',
];

describe('scanDotenvLines', () => {
  it('finds the variables dotenv reads', () => {
    for (const text of texts) {
      const scanned = new Set(scanDotenvLines(text).assignments.map((assignment) => assignment.variable));
      scanned.delete('__proto__');
      assert.deepEqual([...scanned].sort(), Object.keys(parse(text)).sort(), JSON.stringify(text));
    }
  });

  it('numbers assignments by their name line', () => {
    const { assignments } = scanDotenvLines('# settings\n\n\nA=1\nMULTI="x\ny"\n  export B=2\n');
    assert.deepEqual(assignments, [
      { variable: 'A', line: 4 },
      { variable: 'MULTI', line: 5 },
      { variable: 'B', line: 7 },
    ]);
  });

  it('lists the lines dotenv skips', () => {
    const text = ['A=1', 'junk line', '# comment', '', 'export LONELY', 'MULTI="x', 'inside the value', '"', '=no-name', '  B = 2', 'NOSPACE:value'].join('\n');
    assert.deepEqual(scanDotenvLines(text).unparsed, [2, 5, 9, 11]);
  });

  it('counts CRLF and CR as line breaks', () => {
    const { assignments, unparsed } = scanDotenvLines('A=1\r\njunk\rB=2\r\n');
    assert.deepEqual(assignments, [
      { variable: 'A', line: 1 },
      { variable: 'B', line: 3 },
    ]);
    assert.deepEqual(unparsed, [2]);
  });

  it('finds __proto__, which parse drops', () => {
    const { assignments } = scanDotenvLines('__proto__=p\n');
    assert.deepEqual(assignments, [{ variable: '__proto__', line: 1 }]);
    assert.equal(Object.hasOwn(parse('__proto__=p\n'), '__proto__'), false);
  });
});
