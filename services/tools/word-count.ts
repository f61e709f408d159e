import { z } from "zod";
import { defineTool } from "./define-tool.js";

/** Word, character (Unicode code point) and line counts of a text. */
export function countText(text: string): { words: number; characters: number; lines: number } {
  const words = text.split(/\s+/u).filter((w) => w.length > 0).length;
  let characters = 0;
  for (const _ of text) characters++;
  // A trailing newline ends the last line rather than starting an empty one.
  const lines = text === "" ? 0 : text.replace(/(\r\n|\r|\n)$/, "").split(/\r\n|\r|\n/).length;
  return { words, characters, lines };
}

const argsSchema = z.strictObject({
  text: z.string().describe("The text to count"),
});

/** Counts words, characters and lines of a text. */
export const wordCountTool = defineTool({
  name: "word_count",
  description:
    "Count the words (whitespace-separated), characters (Unicode code points) and lines of a text.",
  readOnly: true,
  pure: true,
  argsSchema,
  run: (args) => {
    const { words, characters, lines } = countText(args.text);
    return Promise.resolve(`words: ${words}\ncharacters: ${characters}\nlines: ${lines}`);
  },
});
