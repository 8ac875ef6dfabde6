// The implementation lives on the lower side (guest/) because the guest agent needs it too.
export { socketAnswers } from '../../guest/socket-answers.js';
