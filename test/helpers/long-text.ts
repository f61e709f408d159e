/**
 * A long text for the chunking tests and bench: numbered paragraphs of 2 to 6 sentences whose words
 * vary with the paragraph, so no two paragraphs (and no two chunks) are the same. `seed` gives another
 * text of the same shape.
 */
export function longText(bytes: number, seed = 0): string {
  const words = "river stone market ledger harbour signal orchard copper lantern meadow".split(" ");
  const out: string[] = [];
  let size = 0;
  for (let p = 0; size < bytes; p++) {
    const sentences: string[] = [];
    for (let s = 0; s < 2 + ((p * 7 + 3) % 5); s++) {
      const n = 6 + ((p * 13 + s * 5 + seed) % 11);
      const w = Array.from({ length: n }, (_, i) => words[(p * 3 + s * 7 + i * i + seed) % 10]);
      sentences.push(`Paragraph ${p} sentence ${s} tells of the ${w.join(" ")}.`);
    }
    const paragraph = sentences.join(" ");
    out.push(paragraph);
    size += paragraph.length + 2;
  }
  return `${out.join("\n\n")}\n`;
}
