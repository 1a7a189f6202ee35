/** Control characters: C0 (newline and escape included), DEL and C1. */
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/g;

/** Replaces each control character with its `\uXXXX` escape, so text from a client cannot move or recolor a terminal's output. */
export function escapeControls(text: string): string {
  return text.replace(controlCharacters, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
