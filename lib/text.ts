/** "1 shard", "3 shards". */
export const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** Items for a one-line message, at most `max` of them: "a, b, c and 997 more" (a message stays readable at any scale). */
export function someOf(items: string[], max = 5, separator = ', '): string {
  if (items.length <= max) return items.join(separator);
  return `${items.slice(0, max).join(separator)} and ${items.length - max} more`;
}
