/** "1 message", "2 messages": a count with its noun; `many` for nouns that take more than an s ("tries") */
export const plural = (count: number, one: string, many = `${one}s`): string =>
  `${count} ${count === 1 ? one : many}`;
