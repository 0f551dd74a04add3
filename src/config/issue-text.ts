/**
 * A config schema complaint as a sentence a person understands ("Must be at
 * most 65535"), instead of the schema library's wording ("Too big: expected
 * number to be <=65535"): beside the field on the page, after the key name in
 * `config check`. Our own refinements already speak plainly and pass through.
 */
import type { z } from 'zod';

const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'text',
  boolean: 'on or off',
  array: 'a list',
};

export function issueSentence(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_big':
      return issue.origin === 'string'
        ? `Must be at most ${String(issue.maximum)} characters`
        : `Must be at most ${String(issue.maximum)}`;
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'Must not be empty';
      return issue.origin === 'string'
        ? `Must be at least ${String(issue.minimum)} characters`
        : `Must be at least ${String(issue.minimum)}`;
    case 'invalid_type':
      return `Must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `Must be one of: ${issue.values.map((value) => String(value)).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'email'
        ? 'Must be an email address like it@example.com'
        : `Must be a valid ${issue.format}`;
    default:
      return issue.message;
  }
}
